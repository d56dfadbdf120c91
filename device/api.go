package device

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/escpos"
)

// maxBody bounds a request body (a receipt is the largest).
const maxBody = posagent.MaxReceiptBytes + 1024

// Handler is the local API (openapi.yaml next to this file):
//
//	POST /v1/payments               create (idempotent by idempotency_key)
//	GET  /v1/payments/{id}          read
//	POST /v1/payments/{id}/cancel   cancel a waiting payment
//	GET  /v1/events                 Server-Sent Events, with ids and Last-Event-ID replay
//	POST /v1/receipts               print a receipt (the JSON of `posagent print`)
//	POST /v1/display                {"lines": ["…", "…"]}
//	POST /v1/drawer/open            kick the cash drawer
//	GET  /v1/status                 devices, journal, sync, version
//	GET  /metrics                   Prometheus text format
//
// Every request needs "Authorization: Bearer TOKEN" (EventSource cannot set headers, so
// GET /v1/events also takes ?access_token=). Errors are {"error": {"code", "message"}}.
// Browsers on the configured origins get CORS answers, including Chrome's Private Network
// Access preflight.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/payments", a.handleCreate)
	mux.HandleFunc("GET /v1/payments/{id}", a.handleGet)
	mux.HandleFunc("POST /v1/payments/{id}/cancel", a.handleCancel)
	mux.HandleFunc("POST /v1/payments/{id}/refunds", a.handleRefund)
	mux.HandleFunc("GET /v1/events", func(w http.ResponseWriter, r *http.Request) { a.events.serveSSE(w, r, a.stopCh) })
	mux.HandleFunc("POST /v1/receipts", a.handleReceipt)
	mux.HandleFunc("POST /v1/display", a.handleDisplay)
	mux.HandleFunc("POST /v1/drawer/open", a.handleDrawer)
	mux.HandleFunc("GET /v1/status", a.handleStatus)
	a.reportRoutes(mux) // GET /v1/reports/current, POST /v1/reports/close (report.go)
	mux.Handle("GET /metrics", a.metrics.handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.Method+" "+r.URL.Path)
	})
	return a.statusGate(a.cors(a.auth(mux))) // Host check, the status page and its routes (status.go)
}

// cors answers browsers on the configured origins. A preflight from another origin is
// refused; a simple request from one gets no CORS headers (the browser then hides the
// answer). Chrome asks before a public page talks to a private address
// (Access-Control-Request-Private-Network); the answer allows it for the configured origins.
func (a *Agent) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		allowed := origin != "" && slices.Contains(a.cfg.API.Origins, origin)
		if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", "Idempotent-Replayed")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeError(w, http.StatusForbidden, "origin_not_allowed", fmt.Sprintf("origin %q is not in api.origins", origin))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID, Idempotency-Key")
			h.Set("Access-Control-Max-Age", "600")
			if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
				h.Set("Access-Control-Allow-Private-Network", "true")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// auth checks the bearer token in constant time.
func (a *Agent) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + a.cfg.API.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("Authorization")
		if got == "" && r.URL.Path == "/v1/events" {
			if t := r.URL.Query().Get("access_token"); t != "" {
				got = "Bearer " + t
			}
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="posagent"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeError writes {"error": {"code", "message"}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]ErrorInfo{"error": {Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// headerKey takes the Idempotency-Key header into the body's key (they may not differ);
// false means it answered 422.
func headerKey(w http.ResponseWriter, r *http.Request, key *string) bool {
	k := r.Header.Get("Idempotency-Key")
	if k == "" {
		return true
	}
	if *key != "" && *key != k {
		writeError(w, 422, "invalid", "the Idempotency-Key header and idempotency_key differ")
		return false
	}
	*key = k
	return true
}

// writeErr maps an error to its status.
func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.Status, ae.Code, ae.Message)
	case errors.Is(err, errNotFound):
		writeError(w, http.StatusNotFound, "not_found", "no such payment")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, "timeout", "the request was canceled or timed out")
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// DecodeJSON reads one JSON object strictly into v: at most max bytes, unknown fields,
// wrong types and trailing data refused with a message naming the problem. It is the only
// way request bodies are read (fuzzed by FuzzDecodeJSON).
func DecodeJSON(r io.Reader, max int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return &apiError{400, "bad_request", "read body: " + err.Error()}
	}
	if int64(len(data)) > max {
		return &apiError{413, "too_large", fmt.Sprintf("body larger than %d bytes", max)}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			msg = fmt.Sprintf("field %q must be %s, not %s", te.Field, te.Type, te.Value)
		}
		if errors.Is(err, io.EOF) {
			msg = "empty body: a JSON object is expected"
		}
		return &apiError{400, "bad_request", "invalid JSON: " + msg}
	}
	if dec.More() {
		return &apiError{400, "bad_request", "invalid JSON: data after the object"}
	}
	return nil
}

func (a *Agent) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req PaymentRequest
	if err := DecodeJSON(r.Body, maxBody, &req); err != nil {
		writeErr(w, err)
		return
	}
	if !headerKey(w, r, &req.IdempotencyKey) {
		return
	}
	p, replay, err := a.CreatePayment(r.Context(), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/payments/"+p.ID)
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, p)
}

func (a *Agent) handleGet(w http.ResponseWriter, r *http.Request) {
	p, err := a.payment(r.Context(), r.PathValue("id"), "")
	if err != nil {
		writeErr(w, err)
		return
	}
	a.fillRefunds(r.Context(), p)
	writeJSON(w, http.StatusOK, p)
}

func (a *Agent) handleCancel(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	p, err := a.CancelPayment(ctx, r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *Agent) handleReceipt(w http.ResponseWriter, r *http.Request) {
	rc, err := posagent.DecodeReceipt(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		code := 400
		if errors.Is(err, posagent.ErrInvalidInput) || errors.Is(err, posagent.ErrUnsupported) {
			code = 422
		}
		writeError(w, code, "invalid", err.Error())
		return
	}
	if a.dev.printer == nil {
		writeError(w, http.StatusServiceUnavailable, "no_printer", "no printer is configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	res, err := a.dev.printer.Print(ctx, rc)
	if err != nil {
		reason := escpos.Reason(err)
		if reason == "" {
			reason = "error"
		}
		if errors.Is(err, posagent.ErrInvalidInput) || errors.Is(err, posagent.ErrUnsupported) {
			writeError(w, 422, "invalid", err.Error())
			return
		}
		a.events.publish("receipt", map[string]any{"kind": "pos", "printed": false, "error": err.Error(), "reason": reason})
		writeError(w, http.StatusServiceUnavailable, "printer_"+strings.ReplaceAll(reason, "-", "_"), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"printed": true, "bytes": res.Bytes, "status": res.After.String(), "warnings": res.Warnings})
}

// DisplayRequest is POST /v1/display.
type DisplayRequest struct {
	Lines []string `json:"lines"`
}

func (a *Agent) handleDisplay(w http.ResponseWriter, r *http.Request) {
	var req DisplayRequest
	if err := DecodeJSON(r.Body, 4096, &req); err != nil {
		writeErr(w, err)
		return
	}
	if len(req.Lines) == 0 || len(req.Lines) > display.Rows {
		writeError(w, 422, "invalid", fmt.Sprintf("lines must hold 1 or %d lines", display.Rows))
		return
	}
	a.mu.Lock()
	busy := a.cur != nil
	a.mu.Unlock()
	if busy {
		writeError(w, http.StatusConflict, "busy", "a payment is open: the display shows the checkout")
		return
	}
	var s display.Screen
	for i, l := range req.Lines {
		s[i] = display.Fit(l)
	}
	a.show(s)
	writeJSON(w, http.StatusOK, map[string]any{"lines": s})
}

func (a *Agent) handleDrawer(w http.ResponseWriter, r *http.Request) {
	if a.dev.printer == nil {
		writeError(w, http.StatusServiceUnavailable, "no_printer", "no printer is configured (the drawer hangs on it)")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := a.dev.printer.OpenDrawer(ctx); err != nil {
		if errors.Is(err, posagent.ErrUnsupported) {
			writeError(w, 422, "unsupported", err.Error())
			return
		}
		writeError(w, http.StatusServiceUnavailable, "printer", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"opened": true})
}

// Status is GET /v1/status.
type Status struct {
	Version  string        `json:"version"`
	Terminal string        `json:"terminal"`
	Uptime   float64       `json:"uptime_seconds"`
	Checkout any           `json:"checkout"`
	Acquirer any           `json:"acquirer"`
	Journal  any           `json:"journal"`
	Sync     any           `json:"sync"`
	Devices  []DeviceState `json:"devices"`
}

func (a *Agent) handleStatus(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	co := map[string]any{"phase": a.phase}
	if a.cur != nil {
		co["payment_id"] = a.cur.p.ID
	}
	a.mu.Unlock()
	st := Status{Version: a.opt.Version, Terminal: a.cfg.Terminal, Uptime: time.Since(a.started).Seconds(), Checkout: co,
		Acquirer: map[string]any{"url": a.cfg.Acquirer.URL, "online": a.online.Load(), "clock_skew_seconds": a.Skew().Seconds()},
		Devices:  a.dev.states(r.Context(), a.cfg.Devices)}
	if js, err := a.journal.Stats(r.Context()); err == nil {
		st.Journal = map[string]any{"path": a.journal.Path(), "records": js.Records, "last_sequence": js.LastSeq, "unacked": js.Unacked,
			"outstanding": js.Outstanding.Count, "outstanding_amounts": js.Outstanding.Amounts, "overdue": js.Overdue, "hold": js.Hold, "by_state": js.ByState}
		if revs, err := a.journal.PendingReversals(r.Context()); err == nil {
			st.Journal.(map[string]any)["reversals_pending"] = len(revs)
		}
	} else {
		st.Journal = map[string]string{"error": err.Error()}
	}
	a.syncMu.Lock()
	// high_water is the acquirer's (every sequence up to it is stored there), from its
	// last answer to a batch, not this round's (0 when a round sent nothing).
	sy := map[string]any{"high_water": a.highWater.Load(), "left": a.lastRep.Left}
	if !a.lastSync.IsZero() {
		sy["last_ok"] = a.lastSync.UTC()
	}
	if a.syncErr != "" {
		sy["error"] = a.syncErr
	}
	a.syncMu.Unlock()
	st.Sync = sy
	writeJSON(w, http.StatusOK, st)
}
