// Package acquirer is the reference sync endpoint: the acquirer's side of the protocol in
// sync/openapi.yaml. It authenticates every request (package signing), authorizes sales
// online with simulated decisions, stores store-and-forward batches exactly once (by
// terminal and sequence, and by idempotency key, for ever), verifies the terminals' hash
// chains, and serves the results feed, merchant-presented orders and terminal configuration.
package acquirer

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// ChainVerifier recomputes a record's hash and MAC from its fields and the terminal's
// provisioned secret; it returns a reason when they do not match. The terminal's journal
// defines the chain; VerifyJournalRecord is that definition.
type ChainVerifier func(secret []byte, rec wire.Record) string

// chainSecreter is what a store offers when terminals' secrets can be rotated: the current
// secret and the replaced one while the rotation's grace lasts, in one lookup (SQLite and
// Postgres do).
type chainSecreter interface {
	ChainSecrets(ctx context.Context, terminal string) (current, retired []byte, err error)
}

// Options configure a Server. The zero value of each field is a sensible default.
type Options struct {
	Log *slog.Logger
	// Now is the clock (time.Now). When set, New also makes it the store's clock (see
	// Clocked), so tests drive pending authorizations' resolution with it.
	Now func() time.Time
	// Skew is the signature clock-skew window (signing.DefaultSkew).
	Skew time.Duration
	// VerifyChain checks each record's own hash, MAC and credential tag: acquirerd uses
	// VerifyJournalRecord. nil checks only the links between records (for tests).
	VerifyChain ChainVerifier
	// SimTimeout is how long a "time out" authorization hangs (30 s).
	SimTimeout time.Duration
	// SimDelay is how long an authorization approved after the client's timeout
	// (SimLateApproval) is held before it is decided and stored (8 s).
	SimDelay time.Duration
	// SimPending is how long a pending_customer authorization (SimPendingApprove,
	// SimPendingDecline) waits for the customer before it resolves (3 s).
	SimPending time.Duration
	// RequireClientCert demands mutual TLS with per-device certificates: every signed
	// request must arrive over TLS with a verified client certificate whose CommonName is
	// the terminal that signed it (X-Posagent-Terminal), else 403. The TLS listener
	// verifies the certificate (tls.RequireAndVerifyClientCert); this binds it to the
	// terminal.
	RequireClientCert bool
	// Limits is the admission control: requests in flight, globally and per terminal,
	// and the size of bodies and batches (see Limits; the zero value is the defaults).
	Limits Limits
}

// Server is the HTTP handler of the endpoint.
type Server struct {
	store    Store
	verifier *signing.Verifier
	opts     Options
	log      *slog.Logger
	mux      *http.ServeMux
	metrics  *metrics
	adm      *admission

	mu       sync.Mutex
	attempts map[string]int // simulated "try again" decisions, by idempotency key

	// simWait is the wait of SimLateApproval (time.After); tests hold and release it.
	simWait func(time.Duration) <-chan time.Time
}

// New returns the endpoint over store.
func New(store Store, opts Options) *Server {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	} else if c, ok := store.(Clocked); ok {
		c.SetClock(opts.Now)
	}
	if opts.SimTimeout == 0 {
		opts.SimTimeout = 30 * time.Second
	}
	if opts.SimDelay == 0 {
		opts.SimDelay = 8 * time.Second
	}
	if opts.SimPending == 0 {
		opts.SimPending = 3 * time.Second
	}
	if _, ok := store.(*SQLite); ok && opts.Limits.MaxInFlight == 0 {
		opts.Limits.MaxInFlight = DefaultMaxInFlightSQLite
	}
	s := &Server{
		store:    store,
		verifier: &signing.Verifier{Keys: store, Nonces: deferringNonces{store}, Skew: opts.Skew, Now: opts.Now},
		opts:     opts,
		log:      opts.Log,
		mux:      http.NewServeMux(),
		metrics:  newMetrics(),
		adm:      newAdmission(opts.Limits.withDefaults()),
		attempts: map[string]int{},
		simWait:  time.After,
	}
	for _, r := range s.routes() {
		s.mux.HandleFunc(r.pattern, s.signed(r))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
	})
	return s
}

type route struct {
	pattern string
	h       handler
	// deferNonce: the handler's one store transaction records the request's nonce (see
	// recordDeferredNonce), so that the request costs one durable commit.
	deferNonce bool
}

// routes are the signed endpoints; sync/openapi.yaml documents exactly these (a test checks).
func (s *Server) routes() []route {
	return []route{
		{"GET /v1/ping", s.ping, false},
		{"POST /v1/authorizations", s.authorize, true},
		{"GET /v1/authorizations/{id}", s.status, false},
		{"POST /v1/authorizations/{id}/reversal", s.reverse, false},
		{"POST /v1/terminals/{terminal}/batches", s.batch, true},
		{"GET /v1/terminals/{terminal}/results", s.results, false},
		{"GET /v1/terminals/{terminal}/config", s.config, false},
		{"GET /v1/terminals/{terminal}/chain", s.chain, false},
		{"GET /v1/orders/{reference}", s.order, false},
		{"POST /v1/orders/{reference}/close", s.closeOrder, false},
		{"POST /v1/refunds", s.refund, false},
		{"GET /v1/terminals/{terminal}/totals", s.totals, false},
	}
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// request is an authenticated request: who signed it and its body.
type request struct {
	*http.Request
	terminal string
	body     []byte
}

type handler func(w http.ResponseWriter, r request) (status int)

// signed admits, authenticates and handles the request, and logs and counts the outcome.
func (s *Server) signed(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start, t0 := s.opts.Now(), time.Now()
		route := r.Pattern
		if rt.deferNonce {
			r = r.WithContext(withDeferredNonce(r.Context()))
		}
		terminal, status := s.serveSigned(w, r, rt.h)
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route, resultOf(status)).Observe(time.Since(t0).Seconds())
		s.log.Info("request", "route", route, "terminal", terminal, "status", status,
			"duration_ms", float64(s.opts.Now().Sub(start).Microseconds())/1000)
	}
}

// serveSigned is signed's work: a global slot (429 when none comes free in time), the
// body's bound (413), the signature, a slot of the signing terminal (429), the handler.
func (s *Server) serveSigned(w http.ResponseWriter, r *http.Request, h handler) (terminal string, status int) {
	lim := s.adm.limits
	if !s.adm.enter(r.Context()) {
		return "", s.tooBusy(w, "global", fmt.Sprintf("the acquirer is handling its limit of %d requests: retry after the Retry-After delay", lim.MaxInFlight))
	}
	defer s.adm.leave()
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	if r.ContentLength > lim.MaxBody {
		return "", writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge,
			fmt.Sprintf("the body of %d bytes is above this acquirer's limit of %d bytes: send smaller batches", r.ContentLength, lim.MaxBody))
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = &limitedBody{r: r.Body, n: lim.MaxBody, max: lim.MaxBody}
	}
	terminal, body, err := s.verifier.Verify(r)
	if err != nil {
		return terminal, s.authError(w, err)
	}
	if msg := s.clientCertMismatch(r, terminal); msg != "" {
		return terminal, writeError(w, http.StatusForbidden, wire.CodeForbidden, msg)
	}
	if t := r.PathValue("terminal"); t != "" && t != terminal {
		return terminal, writeError(w, http.StatusForbidden, wire.CodeForbidden,
			fmt.Sprintf("signed by terminal %s, but the path names terminal %s", terminal, t))
	}
	if !s.adm.enterTerminal(terminal) {
		return terminal, s.tooBusy(w, "terminal", fmt.Sprintf("terminal %s already has %d requests in flight, this acquirer's limit: send one at a time", terminal, lim.PerTerminal))
	}
	defer s.adm.leaveTerminal(terminal)
	return terminal, h(w, request{r, terminal, body})
}

// clientCertMismatch returns why the request's client certificate does not authorize the
// signing terminal, or "" when it does or client certificates are not required.
func (s *Server) clientCertMismatch(r *http.Request, terminal string) string {
	if !s.opts.RequireClientCert {
		return ""
	}
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "this acquirer requires a verified client certificate (mTLS)"
	}
	if cn := r.TLS.VerifiedChains[0][0].Subject.CommonName; cn != terminal {
		return fmt.Sprintf("the client certificate is issued to %q, but the request is signed by terminal %s: the certificate's CommonName must be the terminal's id", cn, terminal)
	}
	return ""
}

func (s *Server) authError(w http.ResponseWriter, err error) int {
	switch {
	case errors.Is(err, signing.ErrMissing), errors.Is(err, signing.ErrMalformed):
		return writeError(w, http.StatusUnauthorized, wire.CodeUnsigned, err.Error())
	case errors.Is(err, ErrRevoked):
		return writeError(w, http.StatusUnauthorized, wire.CodeUnknown, err.Error()+": this terminal may no longer sign requests; register it anew with `acquirerd terminals add` and provision it with `posagent provision --force`")
	case errors.Is(err, signing.ErrUnknown):
		return writeError(w, http.StatusUnauthorized, wire.CodeUnknown, "unknown terminal: register it with `acquirerd terminals add`")
	case errors.Is(err, signing.ErrStale):
		return writeError(w, http.StatusUnauthorized, wire.CodeStale, err.Error())
	case errors.Is(err, signing.ErrReplay):
		return writeError(w, http.StatusUnauthorized, wire.CodeReplay, "nonce already used: sign every request with a fresh nonce")
	case errors.Is(err, signing.ErrSignature):
		return writeError(w, http.StatusUnauthorized, wire.CodeBadSignature, "signature does not match: check the terminal's secret and clock")
	case errors.Is(err, signing.ErrTooLarge):
		return writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, err.Error())
	}
	s.log.Error("verify request", "err", err)
	return writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "store unavailable")
}

func writeError(w http.ResponseWriter, status int, code, msg string) int {
	return writeJSON(w, status, wire.ErrorBody{Error: wire.Error{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
	return status
}

// storeError answers a failure of the store.
func (s *Server) storeError(w http.ResponseWriter, op string, err error) int {
	switch {
	case errors.Is(err, signing.ErrReplay):
		return writeError(w, http.StatusUnauthorized, wire.CodeReplay, "nonce already used: sign every request with a fresh nonce")
	case errors.Is(err, ErrConflict):
		return writeError(w, http.StatusConflict, wire.CodeConflict, err.Error())
	case errors.Is(err, ErrNotFound):
		return writeError(w, http.StatusNotFound, wire.CodeNotFound, op+": not found")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, op+": canceled")
	}
	s.log.Error(op, "err", err)
	return writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, op+": store unavailable, retry later")
}

func (s *Server) ping(w http.ResponseWriter, r request) int {
	return writeJSON(w, http.StatusOK, wire.Ping{Terminal: r.terminal, ServerTime: s.opts.Now().UTC()})
}

func (s *Server) chain(w http.ResponseWriter, r request) int {
	h, err := s.store.ChainHead(r.Context(), r.terminal)
	if err != nil {
		return s.storeError(w, "chain", err)
	}
	return writeJSON(w, http.StatusOK, h)
}

func (s *Server) config(w http.ResponseWriter, r request) int {
	cfg, err := s.store.Config(r.Context(), r.terminal)
	if err != nil {
		return s.storeError(w, "config", err)
	}
	return writeJSON(w, http.StatusOK, cfg)
}

func decodeBody[T any](w http.ResponseWriter, body []byte) (T, bool) {
	v, err := wire.Decode[T](bytes.NewReader(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, err.Error())
		return v, false
	}
	return v, true
}

func (s *Server) authorize(w http.ResponseWriter, r request) int {
	req, ok := decodeBody[wire.AuthorizationRequest](w, r.body)
	if !ok {
		return http.StatusBadRequest
	}
	if msg := validateSale(req.ID, req.IdempotencyKey, req.Sequence, req.Amount, req.Currency, req.Method); msg != "" {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, msg)
	}
	if req.Credential == "" {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "credential is empty: send the scanned payment code")
	}
	switch req.Amount % 100 {
	case SimTimeout:
		select {
		case <-time.After(s.opts.SimTimeout):
		case <-r.Context().Done():
		}
		return writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "simulated timeout")
	case SimRetry, SimRateLimit:
		if s.firstAttempt(r.terminal + "\x00" + req.IdempotencyKey) {
			if req.Amount%100 == SimRateLimit {
				w.Header().Set("Retry-After", "1")
				return writeError(w, http.StatusTooManyRequests, wire.CodeRateLimited, "simulated rate limit: retry after 1 s")
			}
			return writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "simulated outage: try again")
		}
	}
	ctx := r.Context()
	if req.Amount%100 == SimLateApproval {
		// Decided after the client has usually given up: the decision is stored even
		// when the client is gone, unless a reversal's tombstone arrived meanwhile.
		<-s.simWait(s.opts.SimDelay)
		ctx = context.WithoutCancel(ctx)
	}
	resp, err := s.store.Authorize(ctx, r.terminal, req, func() Outcome { return s.decideOnline(req) })
	if err != nil {
		return s.storeError(w, "authorize", err)
	}
	s.metrics.decisions.WithLabelValues("online", string(resp.Decision)).Inc()
	switch req.Amount % 100 {
	case SimLostAnswer:
		return dropConnection(w)
	case SimBadGateway:
		return writeError(w, http.StatusBadGateway, wire.CodeUnavailable, "simulated 502 after the decision was stored: ask for the authorization's status")
	}
	return writeJSON(w, http.StatusOK, resp)
}

// decideOnline is the simulated decision for a new online authorization (the Sim
// constants), at the server's clock.
func (s *Server) decideOnline(req wire.AuthorizationRequest) Outcome {
	now := s.opts.Now().UTC()
	d := Decide(req.Amount)
	d.ID, d.DecidedAt = req.ID, now
	out := Outcome{Response: d}
	var final *wire.AuthorizationResponse
	switch req.Amount % 100 {
	case SimPendingApprove:
		final = &wire.AuthorizationResponse{Decision: wire.Approved, AuthCode: d.AuthCode}
	case SimPendingDecline:
		final = &wire.AuthorizationResponse{Decision: wire.Declined, Reason: "customer canceled the payment in the wallet"}
	case SimPendingForever:
	default:
		return out
	}
	out.Response = wire.AuthorizationResponse{ID: req.ID, Decision: wire.PendingCustomer, Reason: "waiting for the customer to confirm in the wallet", DecidedAt: now}
	if final != nil {
		out.PendingUntil = now.Add(s.opts.SimPending)
		final.ID, final.DecidedAt = req.ID, out.PendingUntil
		out.Final = final
	}
	return out
}

// dropConnection closes the client's connection without an answer (SimLostAnswer).
func dropConnection(w http.ResponseWriter) int {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return 0
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: net/http resets the stream
}

func (s *Server) status(w http.ResponseWriter, r request) int {
	id := r.PathValue("id")
	if id == "" || len(id) > 64 {
		return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "id must be 1 to 64 characters (the sale's id)")
	}
	st, err := s.store.AuthorizationStatus(r.Context(), r.terminal, id)
	if err != nil {
		return s.storeError(w, "authorization status", err)
	}
	return writeJSON(w, http.StatusOK, st)
}

func (s *Server) reverse(w http.ResponseWriter, r request) int {
	req, ok := decodeBody[wire.ReversalRequest](w, r.body)
	if !ok {
		return http.StatusBadRequest
	}
	if id := r.PathValue("id"); req.ID != id {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("id %q in the body is not the path's %q", req.ID, id))
	}
	if msg := validateSale(req.ID, req.IdempotencyKey, req.Sequence, req.Amount, req.Currency, "reversal"); msg != "" {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, msg)
	}
	if len(req.Reason) > 256 {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "reason must be at most 256 characters")
	}
	rev, err := s.store.Reverse(r.Context(), r.terminal, req)
	if err != nil {
		return s.storeError(w, "reversal", err)
	}
	s.metrics.decisions.WithLabelValues("reversal", rev.Previous).Inc()
	return writeJSON(w, http.StatusOK, rev)
}

func (s *Server) firstAttempt(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[key]++
	return s.attempts[key] == 1
}

// Simulated authorization outcomes, chosen by the last two digits of the amount in minor
// units (so 12.51 CNY declines). Everything else is approved. 94 to 99 are the cases where
// the terminal must ask for the authorization's status and, still unknown at its
// deadline, reverse it; each applies to every attempt with the same idempotency key.
const (
	SimDeclineFunds   = 51 // declined: insufficient funds
	SimDeclineExpired = 52 // declined: payment code expired
	SimTimeout        = 91 // the authorization hangs for Options.SimTimeout, then 503
	SimRetry          = 92 // 503 on the first attempt, approved on the next
	SimRateLimit      = 93 // 429 Retry-After: 1 on the first attempt, approved on the next
	SimDeclineLater   = 61 // offline record: declined after upload (deferred authorization)
	// SimLostAnswer: approved and stored, then the connection is closed without an answer.
	SimLostAnswer = 94
	// SimLateApproval: held for Options.SimDelay (the status is not_found meanwhile), then
	// decided approved and stored (reversed if a reversal arrived meanwhile), then
	// answered, usually to a client that has gone.
	SimLateApproval = 95
	// SimPendingApprove: answered pending_customer; approved Options.SimPending later.
	SimPendingApprove = 96
	// SimPendingDecline: answered pending_customer; declined Options.SimPending later
	// ("customer canceled the payment in the wallet").
	SimPendingDecline = 97
	// SimPendingForever: answered pending_customer, and pending until the terminal
	// reverses it.
	SimPendingForever = 98
	// SimBadGateway: approved and stored, then answered 502: a 5xx after the money moved.
	SimBadGateway = 99
)

// Decide is the simulated decision for an amount (see the Sim constants).
func Decide(amount int64) wire.AuthorizationResponse {
	switch amount % 100 {
	case SimDeclineFunds:
		return wire.AuthorizationResponse{Decision: wire.Declined, Reason: "insufficient funds"}
	case SimDeclineExpired:
		return wire.AuthorizationResponse{Decision: wire.Declined, Reason: "payment code expired: ask for a new code"}
	case SimDeclineLater:
		return wire.AuthorizationResponse{Decision: wire.Declined, Reason: "declined by the issuer"}
	}
	return wire.AuthorizationResponse{Decision: wire.Approved, AuthCode: fmt.Sprintf("%06d", amount%1000000)}
}

func validateSale(id, key string, seq uint64, amount int64, currency, method string) string {
	switch {
	case id == "" || len(id) > 64:
		return "id must be 1 to 64 characters"
	case key == "" || len(key) > 128:
		return "idempotency_key must be 1 to 128 characters"
	case seq == 0 || seq >= math.MaxInt64:
		return "sequence must be 1 or more, and below 2^63-1"
	case amount <= 0:
		return fmt.Sprintf("amount %d must be positive (minor units)", amount)
	case method == "":
		return "method is empty"
	}
	if _, err := posagent.LookupCurrency(currency); err != nil || len(currency) != 3 || strings.ToUpper(currency) != currency {
		return fmt.Sprintf("currency %q must be an ISO 4217 alphabetic code, e.g. CNY", currency)
	}
	return ""
}

// maxAhead bounds how far beyond the previous record a sequence may jump: a terminal's
// counter has no gaps, so a jump this big is a bug or a forgery ("from the future").
const maxAhead = 1_000_000

func (s *Server) batch(w http.ResponseWriter, r request) int {
	b, ok := decodeBody[wire.Batch](w, r.body)
	if !ok {
		return http.StatusBadRequest
	}
	switch {
	case len(b.Records) == 0:
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "batch has no records")
	case len(b.Records) > s.adm.limits.MaxBatch:
		return writeError(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, fmt.Sprintf("batch has %d records, this acquirer's limit is %d: send smaller batches", len(b.Records), s.adm.limits.MaxBatch))
	}
	for i, rec := range b.Records {
		switch rec.Terminal {
		case "":
			b.Records[i].Terminal = r.terminal
		case r.terminal:
		default:
			return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("records[%d]: terminal %q is not the signer %q", i, rec.Terminal, r.terminal))
		}
		if msg := validateSale(rec.ID, rec.IdempotencyKey, rec.Sequence, rec.Amount, rec.Currency, rec.Method); msg != "" {
			return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("records[%d]: %s", i, msg))
		}
		if i > 0 && rec.Sequence <= b.Records[i-1].Sequence {
			return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("records[%d]: sequence %d is not above the previous record's %d: send records in sequence order", i, rec.Sequence, b.Records[i-1].Sequence))
		}
		if i > 0 && rec.Sequence-b.Records[i-1].Sequence > maxAhead {
			return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("records[%d]: sequence %d is from the future", i, rec.Sequence))
		}
		if !isHex64(rec.Hash) || !isHex64(rec.MAC) || (rec.PrevHash != "" && !isHex64(rec.PrevHash)) {
			return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, fmt.Sprintf("records[%d]: hash, mac and prev_hash must be 64 hex digits", i))
		}
	}
	// Records journaled before a rotation carry the replaced secret's MACs: accepted under
	// it while the rotation's grace lasts. Looked up here, not inside StoreBatch's
	// transaction, which may hold the store's only connection.
	var secret, retired []byte
	if s.opts.VerifyChain != nil {
		var err error
		if cs, ok := s.store.(chainSecreter); ok {
			secret, retired, err = cs.ChainSecrets(r.Context(), r.terminal)
		} else {
			secret, err = s.store.ProvisionedSecret(r.Context(), r.terminal)
		}
		if err != nil {
			return s.storeError(w, "batch", err)
		}
		defer clear(secret)
		defer clear(retired)
	}
	check := func(prev *wire.Record, rec wire.Record) string {
		if prev != nil && prev.Hash != rec.PrevHash {
			return fmt.Sprintf("chain broken: prev_hash does not match the hash of sequence %d", prev.Sequence)
		}
		if s.opts.VerifyChain == nil {
			return ""
		}
		why := s.opts.VerifyChain(secret, rec)
		if why == "" {
			return ""
		}
		if retired != nil && s.opts.VerifyChain(retired, rec) == "" {
			return ""
		}
		return why
	}
	decide := func(rec wire.Record) wire.Result {
		d := Decide(rec.Amount)
		s.metrics.decisions.WithLabelValues("deferred", string(d.Decision)).Inc()
		return wire.Result{ID: rec.ID, Sequence: rec.Sequence, Decision: d.Decision, Reason: d.Reason, AuthCode: d.AuthCode, DecidedAt: s.opts.Now().UTC()}
	}
	resp, err := s.store.StoreBatch(r.Context(), r.terminal, b.Records, check, decide)
	if err != nil {
		return s.storeError(w, "batch", err)
	}
	s.metrics.batchRecords.Observe(float64(len(b.Records)))
	for _, res := range resp.Results {
		s.metrics.records.WithLabelValues(string(res.Status)).Inc()
	}
	return writeJSON(w, http.StatusOK, resp)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func (s *Server) results(w http.ResponseWriter, r request) int {
	var after uint64
	if a := r.URL.Query().Get("after"); a != "" {
		var err error
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, fmt.Sprintf("after=%q must be a cursor (a whole number)", a))
		}
	}
	res, err := s.store.Results(r.Context(), r.terminal, after, 500)
	if err != nil {
		return s.storeError(w, "results", err)
	}
	return writeJSON(w, http.StatusOK, res)
}

// SimRaceSuffix ends the reference of a simulated merchant-presented order that the
// customer pays at the moment the terminal's close arrives: the close finds it paid and
// the acquirer refunds it.
const SimRaceSuffix = "-RACE"

// validReference returns why a merchant-presented order's reference is refused, or "".
func validReference(ref string) string {
	if ref == "" || len(ref) > 25 {
		return "reference must be 1 to 25 characters (EMV tag 62.05)"
	}
	return ""
}

// Simulated merchant-presented orders: a reference ending in "-EXPIRE" expires and one
// ending in "-CANCEL" is canceled on the second poll; any other is paid on the second poll
// (unless the terminal closed it first). One ending in "-RACE" is paid when the close
// arrives (see closeOrder).
func (s *Server) order(w http.ResponseWriter, r request) int {
	ref := r.PathValue("reference")
	if msg := validReference(ref); msg != "" {
		return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, msg)
	}
	o, polls, err := s.store.Order(r.Context(), r.terminal, ref)
	if err != nil {
		return s.storeError(w, "order", err)
	}
	if o.State == "pending" && polls >= 2 {
		state := "paid"
		switch {
		case strings.HasSuffix(ref, "-EXPIRE"):
			state = "expired"
		case strings.HasSuffix(ref, "-CANCEL"):
			state = "canceled"
		}
		now := s.opts.Now()
		err := s.store.SetOrder(r.Context(), ref, state, "unionpay", now)
		switch {
		case errors.Is(err, ErrConflict):
			// Closed (or changed) since it was read: the store's state stands.
			if o, _, err = s.store.Order(r.Context(), r.terminal, ref); err != nil {
				return s.storeError(w, "order", err)
			}
		case err != nil:
			return s.storeError(w, "order", err)
		default:
			o.State, o.Scheme = state, "unionpay"
			if state == "paid" {
				o.PaidAt = now.UTC()
			}
		}
	}
	return writeJSON(w, http.StatusOK, o)
}

// closeOrder closes a merchant-presented order the cashier canceled or that timed out:
// pending → closed, paid → refunded by the acquirer (reported with Refunded true).
func (s *Server) closeOrder(w http.ResponseWriter, r request) int {
	ref := r.PathValue("reference")
	if msg := validReference(ref); msg != "" {
		return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, msg)
	}
	if len(bytes.TrimSpace(r.body)) > 0 && string(bytes.TrimSpace(r.body)) != "{}" {
		return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "the close takes no body (or {})")
	}
	out, err := s.store.CloseOrder(r.Context(), r.terminal, ref, strings.HasSuffix(ref, SimRaceSuffix))
	if err != nil {
		return s.storeError(w, "close order", err)
	}
	s.metrics.decisions.WithLabelValues("order_close", out.State).Inc()
	return writeJSON(w, http.StatusOK, out)
}

// refund decides an online refund: 200 with approved or declined (and why), 409 for an
// idempotency key reused with other content.
func (s *Server) refund(w http.ResponseWriter, r request) int {
	req, ok := decodeBody[wire.RefundRequest](w, r.body)
	if !ok {
		return http.StatusBadRequest
	}
	if msg := validateSale(req.ID, req.IdempotencyKey, req.Sequence, req.Amount, req.Currency, "refund"); msg != "" {
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, msg)
	}
	switch {
	case req.SaleID == "" || len(req.SaleID) > 64:
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "sale_id must be 1 to 64 characters (the refunded sale's id)")
	case req.SaleID == req.ID:
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "sale_id is the refund's own id: id is the refund record's, sale_id the refunded sale's")
	case len(req.Reason) > 256:
		return writeError(w, http.StatusUnprocessableEntity, wire.CodeInvalid, "reason must be at most 256 characters")
	}
	resp, err := s.store.Refund(r.Context(), r.terminal, req)
	if err != nil {
		return s.storeError(w, "refund", err)
	}
	s.metrics.decisions.WithLabelValues("refund", string(resp.Decision)).Inc()
	return writeJSON(w, http.StatusOK, resp)
}

// totals answers the terminal's totals for [from, to) (RFC 3339 times).
func (s *Server) totals(w http.ResponseWriter, r request) int {
	q := r.URL.Query()
	var bounds [2]time.Time
	for i, name := range []string{"from", "to"} {
		v := q.Get(name)
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, fmt.Sprintf("%s=%q must be an RFC 3339 time, e.g. 2026-12-01T08:00:00Z", name, v))
		}
		bounds[i] = t
	}
	if !bounds[0].Before(bounds[1]) {
		return writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "from must be before to: the period is [from, to)")
	}
	t, err := s.store.Totals(r.Context(), r.terminal, bounds[0], bounds[1])
	if err != nil {
		return s.storeError(w, "totals", err)
	}
	return writeJSON(w, http.StatusOK, t)
}

type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	batchRecords prometheus.Histogram
	throttled    *prometheus.CounterVec
	inflight     prometheus.Gauge
	records      *prometheus.CounterVec
	decisions    *prometheus.CounterVec
}

// Metric names acquirerd exports (GET /metrics); configs/grafana-acquirerd.json charts them.
const (
	MetricRequests     = "acquirerd_requests_total"
	MetricDuration     = "acquirerd_request_duration_seconds"
	MetricBatchRecords = "acquirerd_batch_records"
	MetricThrottled    = "acquirerd_throttled_total"
	MetricInFlight     = "acquirerd_requests_in_flight"
	MetricRecords      = "acquirerd_records_total"
	MetricDecisions    = "acquirerd_decisions_total"
)

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRequests, Help: "Requests by route and HTTP status."}, []string{"route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricDuration,
			Help:    "Time to answer a signed request, admission and signature check included, by route and result (ok, client_error, rate_limited, server_error).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"route", "result"}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Name: MetricBatchRecords, Help: "Records per stored batch.",
			Buckets: []float64{1, 10, 50, 100, 200, 300, 400, 500}}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricThrottled, Help: "Requests answered 429 by admission control, by the limit hit (global, terminal)."}, []string{"scope"}),
		inflight:  prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricInFlight, Help: "Signed requests being handled now."}),
		records:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricRecords, Help: "Uploaded records by outcome."}, []string{"status"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricDecisions, Help: "Authorization decisions by kind and outcome."}, []string{"kind", "decision"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.batchRecords, m.throttled, m.inflight, m.records, m.decisions, collectors.NewGoCollector())
	return m
}

// resultOf is the result label of an answer's status.
func resultOf(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "rate_limited"
	case status >= 500 || status == 0:
		return "server_error"
	case status >= 400:
		return "client_error"
	}
	return "ok"
}
