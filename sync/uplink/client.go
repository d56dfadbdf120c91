// Package uplink is the terminal's side of the acquirer protocol (sync/openapi.yaml): a
// Client that signs every request, retries what is safe to retry and stops hammering a
// sick acquirer, and a Syncer that drains the offline journal to the acquirer and brings
// the outcomes of deferred authorizations back.
//
// Exactly once, end to end: the journal marks a record only on the acquirer's answer
// (Ack on accepted or duplicate), and the acquirer deduplicates on (terminal, sequence) and
// on the idempotency key, for ever. A response lost after the acquirer committed is
// therefore retried, answered "duplicate", and acknowledged then: never a second sale.
//
// Keys: the terminal has one provisioned secret (the journal's key file). Requests are
// signed with offline.Key.SigningKey, derived from it; the acquirer, provisioned the same
// secret, derives the same key and also checks every record's HMAC and credential tag.
package uplink

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/wait"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// Defaults of a new Client.
const (
	DefaultTimeout     = 10 * time.Second // per HTTP request, the whole exchange
	DefaultMaxAttempts = 6                // per call, the first included
	maxResponse        = 8 << 20
)

// Client talks to the acquirer for one terminal. Set its fields before first use; it is
// then safe for concurrent use.
type Client struct {
	// BaseURL is the acquirer, e.g. https://acquirer.example (the paths start with /v1).
	BaseURL string
	// Terminal is this terminal's id.
	Terminal string
	// HTTP sends the requests; its Timeout is the per-request timeout.
	HTTP *http.Client
	// Backoff is the wait before retry n (0-based); FullJitter(200ms, 30s) by default.
	// A Retry-After from the acquirer (429, 503) is honoured when it asks for longer.
	Backoff func(attempt int) time.Duration
	// MaxAttempts bounds the attempts of one call, the first included (1: no retries).
	MaxAttempts int
	// Breaker refuses calls while the acquirer is failing; nil disables it.
	Breaker *Breaker
	// Now is the clock the signatures carry (time.Now).
	Now func() time.Time

	key   []byte
	stats struct{ requests, retries, failures atomic.Int64 }
}

// New returns a Client with the defaults, signing with the key derived from the
// terminal's provisioned secret.
func New(baseURL, terminal string, key *offline.Key) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("acquirer URL %q must be http(s)://host[:port]", baseURL)
	}
	if terminal == "" || len(terminal) > 64 || strings.ContainsAny(terminal, "/ \t\n") {
		return nil, fmt.Errorf("terminal id %q must be 1 to 64 characters without '/' or spaces", terminal)
	}
	if key == nil {
		return nil, errors.New("uplink: no key: requests are signed with the terminal's provisioned secret")
	}
	return &Client{
		BaseURL:     strings.TrimRight(baseURL, "/"),
		Terminal:    terminal,
		HTTP:        &http.Client{Timeout: DefaultTimeout},
		Backoff:     FullJitter(200*time.Millisecond, 30*time.Second),
		MaxAttempts: DefaultMaxAttempts,
		Breaker:     NewBreaker(5, 30*time.Second),
		key:         key.SigningKey(),
	}, nil
}

// TLSOptions configure the client's HTTPS to the acquirer. The zero value trusts the
// system's root CAs and presents no client certificate.
type TLSOptions struct {
	// CAFile holds the PEM certificates of the CAs trusted to sign the acquirer's
	// certificate, instead of the system's roots (a private PKI).
	CAFile string
	// CertFile and KeyFile are this device's certificate and private key (PEM), both or
	// neither, for acquirers that require mutual TLS: the certificate's CommonName is the
	// terminal's id.
	CertFile, KeyFile string
}

// Config returns the tls.Config the options describe: TLS 1.2 or later.
func (o TLSOptions) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the acquirer's CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the acquirer's CA file %s holds no PEM certificate", o.CAFile)
		}
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "" || o.KeyFile != "":
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}

// SetTLS makes the client speak TLS as o says; the acquirer URL must be https://. Call it
// before first use. It replaces the HTTP client's transport with a copy of
// http.DefaultTransport carrying the TLS configuration.
func (c *Client) SetTLS(o TLSOptions) error {
	if !strings.HasPrefix(c.BaseURL, "https://") {
		return fmt.Errorf("TLS options need an https:// acquirer URL, not %s", c.BaseURL)
	}
	cfg, err := o.Config()
	if err != nil {
		return err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: DefaultTimeout}
	}
	c.HTTP.Transport = tr
	return nil
}

// Stats are the client's counters since New.
type Stats struct {
	Requests int64 // HTTP requests sent
	Retries  int64 // of which retries
	Failures int64 // requests that failed (transport error, timeout, 429, 5xx)
}

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{c.stats.requests.Load(), c.stats.retries.Load(), c.stats.failures.Load()}
}

// APIError is an error answer from the acquirer ({"error": {"code", "message"}}).
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration // from Retry-After on 429 and 503; 0 when absent
}

func (e *APIError) Error() string {
	return fmt.Sprintf("acquirer answered %d %s: %s", e.Status, e.Code, e.Message)
}

// Temporary reports whether retrying the same request later may succeed: 429, 5xx, and a
// replayed nonce. The client signs every attempt with a fresh nonce, so a replay is its
// own request sent twice below it (net/http re-sends a GET whose connection broke after the
// request went out); signed afresh, the retry goes through.
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500 || e.Code == wire.CodeReplay
}

// Temporary reports whether err is worth retrying later: a transport error or timeout, a
// 429 or 5xx answer, or a refusal by the circuit breaker. Other errors (a rejected
// signature, a malformed request) will fail again until someone fixes something.
func Temporary(err error) bool {
	if err == nil {
		return false
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Temporary()
	}
	if errors.Is(err, ErrCircuitOpen) {
		return true
	}
	var te *TransportError
	return errors.As(err, &te)
}

// TransportError is a request that got no complete answer: connection refused or reset,
// a timeout, a response cut short. The acquirer may or may not have acted on it, so only
// requests that are safe to repeat are retried (all of this protocol's are).
type TransportError struct {
	Op  string // "POST /v1/…"
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }
func (e *TransportError) Unwrap() error { return e.Err }

// ErrMaybeSent is matched (errors.Is) by an error of a call at least one of whose
// attempts may have reached the acquirer: it got a connection, so the request may have
// been written and acted on (a timeout, a reset after writing, a 5xx, a truncated or any
// other answer). See Unsent.
var ErrMaybeSent = errors.New("the request may have reached the acquirer")

// sendError is an error of a call, with whether any of its attempts may have been sent.
// Its message is the underlying error's.
type sendError struct {
	err       error
	maybeSent bool
}

func (e *sendError) Error() string        { return e.err.Error() }
func (e *sendError) Unwrap() error        { return e.err }
func (e *sendError) Is(target error) bool { return target == ErrMaybeSent && e.maybeSent }

// Unsent reports whether err, returned by a Client call, proves that the acquirer never
// received the request: every attempt failed before a connection to the acquirer was
// made (dial error, connection refused, DNS, TLS handshake), was refused by the circuit
// breaker, or could not be built or signed. Then an authorization certainly did not
// happen. Anything else is "maybe sent": a timeout or reset after connecting, a 5xx, a
// truncated answer, and errors not returned by a Client call (Unsent is conservative:
// when unsure, false).
func Unsent(err error) bool {
	var se *sendError
	return errors.As(err, &se) && !se.maybeSent
}

// Ping is one authenticated GET /v1/ping, without retries: "online" means it succeeds. It
// goes through even when the breaker is open, and a success closes the breaker.
func (c *Client) Ping(ctx context.Context) (wire.Ping, error) {
	var p wire.Ping
	sent, err := c.attempt(ctx, http.MethodGet, "/v1/ping", nil, &p, false)
	if err != nil {
		err = &sendError{err, sent}
	}
	return p, err
}

// Authorize asks for online authorization of one sale. Retries are safe: the acquirer
// answers a repeated idempotency key with its original decision. Give ctx the deadline
// the cashier can wait; on a timeout or a network failure the caller follows the offline
// policy or fails the sale, and the decision, if the acquirer made one, is found by the
// idempotency key when the record is uploaded.
func (c *Client) Authorize(ctx context.Context, req wire.AuthorizationRequest) (wire.AuthorizationResponse, error) {
	var resp wire.AuthorizationResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, err
	}
	err = c.do(ctx, http.MethodPost, "/v1/authorizations", body, &resp)
	return resp, err
}

// AuthorizationStatus asks what the acquirer holds for the online authorization of sale
// id (the journal's id), when the answer to Authorize was lost or late: State is a
// decision, or wire.StatusNotFound when the authorization has not arrived (yet).
func (c *Client) AuthorizationStatus(ctx context.Context, id string) (wire.AuthorizationStatus, error) {
	var st wire.AuthorizationStatus
	err := c.do(ctx, http.MethodGet, "/v1/authorizations/"+url.PathEscape(id), nil, &st)
	return st, err
}

// Reverse reverses the online authorization of sale req.ID, whatever its state, or leaves
// a tombstone that refuses it if it has not arrived. Retries are safe: the acquirer
// answers every repetition with the first reversal's answer.
func (c *Client) Reverse(ctx context.Context, req wire.ReversalRequest) (wire.ReversalResponse, error) {
	var resp wire.ReversalResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, &sendError{err, false}
	}
	err = c.do(ctx, http.MethodPost, "/v1/authorizations/"+url.PathEscape(req.ID)+"/reversal", body, &resp)
	return resp, err
}

// UploadBatch sends records (ascending sequence, at most wire.MaxBatch) and returns the
// per-record answers. Retries send the same records again; what the acquirer stored the
// first time comes back as duplicate.
func (c *Client) UploadBatch(ctx context.Context, recs []wire.Record) (wire.BatchResponse, error) {
	var resp wire.BatchResponse
	body, err := json.Marshal(wire.Batch{Records: recs})
	if err != nil {
		return resp, err
	}
	err = c.do(ctx, http.MethodPost, "/v1/terminals/"+url.PathEscape(c.Terminal)+"/batches", body, &resp)
	if err == nil && len(resp.Results) != len(recs) {
		err = fmt.Errorf("batch of %d records answered with %d results", len(recs), len(resp.Results))
	}
	return resp, err
}

// Results returns the outcomes of deferred authorizations after the cursor.
func (c *Client) Results(ctx context.Context, after uint64) (wire.Results, error) {
	var r wire.Results
	err := c.do(ctx, http.MethodGet, "/v1/terminals/"+url.PathEscape(c.Terminal)+"/results?after="+strconv.FormatUint(after, 10), nil, &r)
	return r, err
}

// Order returns the status of a merchant-presented (dynamic QR) sale.
func (c *Client) Order(ctx context.Context, reference string) (wire.Order, error) {
	var o wire.Order
	err := c.do(ctx, http.MethodGet, "/v1/orders/"+url.PathEscape(reference), nil, &o)
	return o, err
}

// Refund asks for an online refund of req.SaleID. The answer is approved or declined (with
// the reason: an unknown or unapproved sale, another currency, more than is left); only an
// error leaves the outcome unknown. Retries are safe: the acquirer answers a repeated
// idempotency key with its original answer (other content under the key: 409 conflict).
func (c *Client) Refund(ctx context.Context, req wire.RefundRequest) (wire.RefundResponse, error) {
	var resp wire.RefundResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, &sendError{err, false}
	}
	err = c.do(ctx, http.MethodPost, "/v1/refunds", body, &resp)
	return resp, err
}

// CloseOrder closes a merchant-presented order the cashier canceled or that timed out: a
// pending order is closed (the customer can no longer pay it); one the customer paid just
// before is refunded by the acquirer (State "refunded", Refunded true), which the terminal
// reports. Retries are safe: closing again returns the same answer.
func (c *Client) CloseOrder(ctx context.Context, reference string) (wire.OrderClose, error) {
	var out wire.OrderClose
	err := c.do(ctx, http.MethodPost, "/v1/orders/"+url.PathEscape(reference)+"/close", nil, &out)
	return out, err
}

// Totals returns the acquirer's totals of this terminal's sales captured in [from, to),
// for the shift report to compare with the journal's.
func (c *Client) Totals(ctx context.Context, from, to time.Time) (wire.Totals, error) {
	var t wire.Totals
	q := url.Values{"from": {from.UTC().Format(time.RFC3339Nano)}, "to": {to.UTC().Format(time.RFC3339Nano)}}
	err := c.do(ctx, http.MethodGet, "/v1/terminals/"+url.PathEscape(c.Terminal)+"/totals?"+q.Encode(), nil, &t)
	return t, err
}

// ChainHead returns the highest sequence the acquirer holds for this terminal and its
// record's hash.
func (c *Client) ChainHead(ctx context.Context) (wire.ChainHead, error) {
	var h wire.ChainHead
	err := c.do(ctx, http.MethodGet, "/v1/terminals/"+url.PathEscape(c.Terminal)+"/chain", nil, &h)
	return h, err
}

// Config returns the terminal's configuration and offline risk policy.
func (c *Client) Config(ctx context.Context) (wire.TerminalConfig, error) {
	var cfg wire.TerminalConfig
	err := c.do(ctx, http.MethodGet, "/v1/terminals/"+url.PathEscape(c.Terminal)+"/config", nil, &cfg)
	return cfg, err
}

// do sends a request with retries: transport errors, timeouts, 429 and 5xx are retried
// after the backoff (or the Retry-After, when longer), each time signed afresh, until
// MaxAttempts, the breaker or ctx says stop. Its error says (Unsent, ErrMaybeSent)
// whether any attempt may have reached the acquirer.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	maybeSent := false
	err := c.retry(ctx, method, path, body, out, &maybeSent)
	if err != nil {
		return &sendError{err, maybeSent}
	}
	return nil
}

func (c *Client) retry(ctx context.Context, method, path string, body []byte, out any, maybeSent *bool) error {
	attempts := max(c.MaxAttempts, 1)
	var err error
	for n := 0; n < attempts; n++ {
		if n > 0 {
			pause := time.Duration(0)
			if c.Backoff != nil {
				pause = c.Backoff(n - 1)
			}
			var ae *APIError
			if errors.As(err, &ae) && ae.RetryAfter > pause {
				pause = ae.RetryAfter
			}
			if serr := wait.Sleep(ctx, pause); serr != nil {
				return fmt.Errorf("%w (while retrying: %v)", err, serr)
			}
			c.stats.retries.Add(1)
		}
		var sent bool
		sent, err = c.attempt(ctx, method, path, body, out, true)
		*maybeSent = *maybeSent || sent
		if err == nil || !Temporary(err) || errors.Is(err, ErrCircuitOpen) || ctx.Err() != nil {
			return err
		}
	}
	if attempts > 1 {
		return fmt.Errorf("%w (gave up after %d attempts)", err, attempts)
	}
	return err
}

// attempt sends one signed request and decodes a 2xx answer into out. sent reports
// whether the request may have reached the acquirer: a connection to it was made (the
// request can only have been written after that), whatever happened next.
func (c *Client) attempt(ctx context.Context, method, path string, body []byte, out any, gated bool) (sent bool, err error) {
	op := method + " " + strings.SplitN(path, "?", 2)[0]
	if gated && c.Breaker != nil {
		if err := c.Breaker.Allow(); err != nil {
			return false, err
		}
	}
	var connected atomic.Bool
	defer func() { sent = sent || connected.Load() }()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})
	outcome := c.breakerOutcome
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, r)
	if err != nil {
		outcome(nil, false)
		return false, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	if err := signing.Sign(req, c.Terminal, c.key, now(), signing.NewNonce()); err != nil {
		outcome(nil, false)
		return false, err
	}
	c.stats.requests.Add(1)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		err = &TransportError{Op: op, Err: err}
		outcome(err, ctx.Err() != nil)
		return false, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	resp.Body.Close()
	if err != nil {
		err = &TransportError{Op: op, Err: fmt.Errorf("read answer: %w", err)}
		outcome(err, ctx.Err() != nil)
		return false, err
	}
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			err = &TransportError{Op: op, Err: fmt.Errorf("decode answer: %w", err)}
			outcome(err, false)
			return false, err
		}
		outcome(nil, false)
		return true, nil
	}
	ae := &APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: http.StatusText(resp.StatusCode)}
	var eb wire.ErrorBody
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		ae.Code, ae.Message = eb.Error.Code, eb.Error.Message
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		ae.RetryAfter, _ = ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	outcome(ae, false)
	return true, fmt.Errorf("%s: %w", op, ae)
}

// breakerOutcome tells the breaker what an attempt says about the acquirer: an answer
// (2xx, 4xx) is a success, a transport failure or 5xx a failure; a 429 (alive, but slow
// down) and a request the caller canceled say nothing.
func (c *Client) breakerOutcome(err error, canceled bool) {
	var ae *APIError
	isAPI := errors.As(err, &ae)
	if !canceled && Temporary(err) && (!isAPI || ae.Code != wire.CodeReplay) {
		c.stats.failures.Add(1)
	}
	if c.Breaker == nil {
		return
	}
	switch {
	case canceled, isAPI && ae.Status == http.StatusTooManyRequests:
		c.Breaker.Abandon()
	case err == nil, isAPI && (!ae.Temporary() || ae.Code == wire.CodeReplay):
		c.Breaker.Success()
	case Temporary(err):
		c.Breaker.Failure()
	default:
		c.Breaker.Abandon()
	}
}
