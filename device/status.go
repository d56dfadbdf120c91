package device

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/display"
)

// The status page for technicians (README, "The status page"): HTML, CSS and JS embedded
// in the binary, no external assets.
//
//	GET  /status                 the page
//	GET  /status/session         {"signed_in": bool, "enabled": bool}
//	POST /status/session         {"token": TECHNICIAN_TOKEN} → session cookie
//	POST /status/logout          ends the session
//	GET  /status/state           GET /v1/status plus the page's extras (session)
//	POST /v1/events/ticket       a one-time ticket for GET /v1/events?ticket=… (session)
//	POST /v1/tests/print         prints a test page (session or technician bearer)
//	POST /v1/tests/display       shows a test pattern (session or technician bearer)
//	GET  /v1/logs                the last log lines, as text (session or technician bearer)
//
// Every request, the POS API's included, must name the agent in Host (DNS rebinding).

//go:embed web
var webFiles embed.FS

const (
	sessionCookie = "posagent_session"
	sessionTTL    = 12 * time.Hour
	ticketTTL     = 30 * time.Second
)

// statusSite serves the page and its routes in front of the POS API (next).
type statusSite struct {
	a      *Agent
	next   http.Handler
	mux    *http.ServeMux
	static http.Handler

	mu       sync.Mutex
	sessions map[string]time.Time // id → expiry
	tickets  map[string]time.Time
}

// statusGate checks Host on every request and serves the status page's routes; the rest
// goes to next (the POS API).
func (a *Agent) statusGate(next http.Handler) http.Handler {
	s := &statusSite{a: a, next: next, mux: http.NewServeMux(), sessions: map[string]time.Time{}, tickets: map[string]time.Time{}}
	sub, _ := fs.Sub(webFiles, "web")
	s.static = http.StripPrefix("/status/", http.FileServerFS(sub))
	s.mux.HandleFunc("GET /status", s.page)
	s.mux.HandleFunc("GET /status/{file}", s.asset)
	s.mux.HandleFunc("GET /status/session", s.whoami)
	s.mux.HandleFunc("POST /status/session", s.login)
	s.mux.HandleFunc("POST /status/logout", s.logout)
	s.mux.HandleFunc("GET /status/state", s.tech(s.state))
	s.mux.HandleFunc("POST /v1/events/ticket", s.tech(s.ticket))
	s.mux.HandleFunc("POST /v1/tests/print", s.tech(s.testPrint))
	s.mux.HandleFunc("POST /v1/tests/display", s.tech(s.testDisplay))
	s.mux.HandleFunc("GET /v1/logs", s.tech(s.logs))
	return s
}

func (s *statusSite) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.hostOK(r.Host) {
		writeError(w, http.StatusMisdirectedRequest, "host_not_allowed", "Host "+r.Host+" is not one of the agent's names (localhost, 127.0.0.1, [::1], api.listen's host)")
		return
	}
	if r.URL.Path == "/v1/events" && r.URL.Query().Has("ticket") {
		if !s.take(r.URL.Query().Get("ticket")) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "the ticket is unknown, used or expired: POST /v1/events/ticket for another")
			return
		}
		s.a.events.serveSSE(w, r, s.a.stopCh)
		return
	}
	if h, pat := s.mux.Handler(r); pat != "" {
		h.ServeHTTP(w, r)
		return
	}
	s.next.ServeHTTP(w, r)
}

// hostOK: the agent's names and IP literals (a rebinding attack needs a DNS name).
func (s *statusSite) hostOK(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || net.ParseIP(host) != nil {
		return true
	}
	lh, _, _ := net.SplitHostPort(s.a.cfg.API.Listen)
	return lh != "" && strings.EqualFold(host, lh)
}

func newID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// take reports whether id is a live ticket, and uses it up.
func (s *statusSite) take(id string) bool {
	m := s.tickets
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for k, exp := range m {
		if now.After(exp) {
			delete(m, k)
		}
	}
	_, ok := m[id]
	delete(m, id)
	return ok && id != ""
}

// tech lets a technician through: a session cookie, or the technician token as a bearer.
// A request with a cookie from another origin is refused (besides SameSite=Strict).
func (s *statusSite) tech(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tok := s.a.cfg.API.TechnicianToken
		if tok != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+tok)) == 1 {
			h(w, r)
			return
		}
		c, err := r.Cookie(sessionCookie)
		if err != nil || !s.session(c.Value) {
			writeError(w, http.StatusUnauthorized, "unauthorized", "sign in on /status with the technician token")
			return
		}
		if o := r.Header.Get("Origin"); o != "" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				writeError(w, http.StatusForbidden, "origin_not_allowed", "the status page's routes answer the status page only")
				return
			}
		}
		h(w, r)
	}
}

func (s *statusSite) session(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.sessions[id]
	if ok && time.Now().After(exp) {
		delete(s.sessions, id)
		return false
	}
	return ok
}

func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

func (s *statusSite) page(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	b, _ := webFiles.ReadFile("web/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func (s *statusSite) asset(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	s.static.ServeHTTP(w, r)
}

// LoginRequest is POST /status/session.
type LoginRequest struct {
	Token string `json:"token"`
}

func (s *statusSite) login(w http.ResponseWriter, r *http.Request) {
	var req LoginRequest
	if err := DecodeJSON(r.Body, 1024, &req); err != nil {
		writeErr(w, err)
		return
	}
	tok := s.a.cfg.API.TechnicianToken
	if tok == "" {
		writeError(w, http.StatusForbidden, "no_technician_token", "the status page is off: set api.technician_token (POSAGENT_TECHNICIAN_TOKEN) and restart the agent")
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.Token), []byte(tok)) != 1 {
		time.Sleep(200 * time.Millisecond) // slows guessing
		writeError(w, http.StatusUnauthorized, "unauthorized", "wrong technician token")
		return
	}
	id := newID()
	s.mu.Lock()
	s.sessions[id] = time.Now().Add(sessionTTL)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.a.log.Info("status page: technician signed in", "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]bool{"signed_in": true})
}

func (s *statusSite) whoami(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	writeJSON(w, http.StatusOK, map[string]bool{"signed_in": err == nil && s.session(c.Value), "enabled": s.a.cfg.API.TechnicianToken != ""})
}

func (s *statusSite) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]bool{"signed_in": false})
}

func (s *statusSite) ticket(w http.ResponseWriter, r *http.Request) {
	id := newID()
	s.mu.Lock()
	s.tickets[id] = time.Now().Add(ticketTTL)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ticket": id, "expires_in": ticketTTL.Seconds()})
}

// memWriter keeps what a handler writes (the page reuses GET /v1/status).
type memWriter struct {
	h    http.Header
	code int
	bytes.Buffer
}

func (m *memWriter) Header() http.Header { return m.h }
func (m *memWriter) WriteHeader(c int)   { m.code = c }

// state is GET /v1/status with the oldest stored sale, the sync lag and the recent errors.
func (s *statusSite) state(w http.ResponseWriter, r *http.Request) {
	a := s.a
	mw := &memWriter{h: http.Header{}}
	a.handleStatus(mw, r)
	var st map[string]any
	if err := json.Unmarshal(mw.Bytes(), &st); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	extra := map[string]any{"errors": a.logs.recent(), "now": a.now().UTC()}
	if js, err := a.journal.Stats(r.Context()); err == nil && js.Outstanding.Count > 0 {
		extra["oldest_outstanding"] = js.Outstanding.Oldest.UTC()
	}
	a.syncMu.Lock()
	if !a.lastSync.IsZero() {
		extra["sync_lag_seconds"] = a.now().Sub(a.lastSync).Seconds()
	}
	a.syncMu.Unlock()
	st["page"] = extra
	writeJSON(w, http.StatusOK, st)
}

// TestReceipt is the page the status page's print test prints: the terminal, the time, a
// width ruler and a QR code.
func TestReceipt(terminal, version string, at time.Time) *posagent.Receipt {
	return &posagent.Receipt{
		Currency: "CNY",
		Header:   []string{"POSAGENT TEST PAGE", "terminal " + terminal},
		Lines: []string{"printed " + at.UTC().Format("2006-01-02 15:04:05") + " UTC", "version " + version,
			"0123456789012345678901234567890123456789"},
		QR:     "posagent test " + terminal,
		Footer: []string{"printer OK"},
	}
}

func (s *statusSite) testPrint(w http.ResponseWriter, r *http.Request) {
	a := s.a
	if a.dev.printer == nil {
		writeError(w, http.StatusServiceUnavailable, "no_printer", "no printer is configured")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	res, err := a.dev.printer.Print(ctx, TestReceipt(a.cfg.Terminal, a.opt.Version, a.now()))
	if err != nil {
		a.log.Warn("test print failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "printer", err.Error())
		return
	}
	a.log.Info("test page printed", "bytes", res.Bytes)
	writeJSON(w, http.StatusOK, map[string]any{"printed": true, "bytes": res.Bytes, "status": res.After.String()})
}

func (s *statusSite) testDisplay(w http.ResponseWriter, r *http.Request) {
	a := s.a
	a.mu.Lock()
	busy := a.cur != nil
	a.mu.Unlock()
	if busy {
		writeError(w, http.StatusConflict, "busy", "a payment is open: the display shows the checkout")
		return
	}
	if a.dev.display == nil {
		writeError(w, http.StatusServiceUnavailable, "no_display", "no display is configured")
		return
	}
	scr := display.Screen{display.Fit(strings.Repeat("0123456789", 2)), display.Fit("TEST " + a.now().UTC().Format("15:04:05") + " ######")}
	a.show(scr)
	a.log.Info("display test pattern shown")
	writeJSON(w, http.StatusOK, map[string]any{"lines": scr})
}

func (s *statusSite) logs(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="posagent-`+s.a.cfg.Terminal+`.log"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(s.a.logs.text())
}
