package device

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// Codes the tests scan.
const (
	wechatCode = "134567890123456789"
	alipayCode = "281234567890123456"
	// An EMV consumer-presented code (UnionPay), which the test policy allows offline.
	cpmCode   = "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQgwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
	testToken = "test-token-0123456789abcdef"
)

// env is the real stack on loopback: possim's ptys, the acquirer endpoint on its SQLite
// file over HTTP (switchable off, as an outage), and the agent on its journal.
type env struct {
	t      testing.TB
	dir    string
	sim    *possim.Sim
	acq    *httptest.Server
	store  acquirer.Store // the acquirer's database
	down   atomic.Bool    // the acquirer drops every connection
	hold   chan struct{}
	unhold chan struct{} // closed at cleanup: held authorizations give up
	holdOn atomic.Bool   // authorizations wait for hold to close
	// authTime is the time the acquirer's handler spent on /v1/authorizations, in
	// nanoseconds, summed (benchmarks subtract it from what the agent took).
	authTime atomic.Int64
	cfg      Config
	agent    *Agent
	url      string
	stop     context.CancelFunc
	runErr   chan error
	log      *bytes.Buffer
	logMu    sync.Mutex
	// quiet logs at info level to nowhere, as a terminal logs (benchmarks: the debug log
	// kept in memory would be most of the heap).
	quiet bool
}

func newEnv(t testing.TB, edit func(*Config)) *env {
	t.Helper()
	e := newEnvStopped(t, edit)
	e.start()
	return e
}

// newEnvStopped is newEnv without starting the agent: the simulator and the acquirer
// run, e.cfg is ready, and e.start starts the agent.
func newEnvStopped(t testing.TB, edit func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, hold: make(chan struct{}), unhold: make(chan struct{}), log: new(bytes.Buffer)}
	ctx, cancel := context.WithCancel(context.Background())
	sim, err := possim.New(filepath.Join(dir, "sim"))
	if err != nil {
		t.Fatal(err)
	}
	sim.Printer.WidthDots = 384
	simDone := make(chan struct{})
	go func() { sim.Run(ctx); close(simDone) }()
	t.Cleanup(func() { cancel(); <-simDone })
	e.sim = sim

	secret := bytes.Repeat([]byte{0x42}, offline.KeySize)
	keyFile := filepath.Join(dir, "terminal.key")
	if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := acquirer.OpenSQLite(filepath.Join(dir, "acquirer.db"), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	if err := st.AddTerminal(context.Background(), "T1", secret, wire.Policy{}); err != nil {
		t.Fatal(err)
	}
	h := acquirer.New(st, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord, SimTimeout: 3 * time.Second, SimDelay: 2500 * time.Millisecond, SimPending: time.Second,
		Log: slog.New(slog.DiscardHandler)})
	e.acq = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				c, _, _ := hj.Hijack()
				c.Close()
				return
			}
		}
		if e.holdOn.Load() && r.URL.Path == "/v1/authorizations" {
			select {
			case <-e.hold:
			case <-e.unhold:
				return
			case <-r.Context().Done():
				return
			}
		}
		if r.URL.Path == "/v1/authorizations" {
			start := time.Now()
			h.ServeHTTP(w, r)
			e.authTime.Add(int64(time.Since(start)))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.acq.Close)
	// A test that failed while an authorization was held must not hang the server's Close.
	t.Cleanup(func() { close(e.unhold) })

	cfg := DefaultConfig()
	cfg.Terminal = "T1"
	cfg.StateDir = filepath.Join(dir, "state")
	cfg.KeyFile = keyFile
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.Token = testToken
	cfg.API.Origins = []string{"https://pos.example.com"}
	cfg.Acquirer.URL = e.acq.URL
	cfg.Acquirer.AuthTimeout = Dur(1500 * time.Millisecond)
	cfg.Acquirer.PingInterval = Dur(200 * time.Millisecond)
	cfg.Acquirer.SyncInterval = Dur(300 * time.Millisecond)
	cfg.Acquirer.RequestTimeout = Dur(time.Second)
	cfg.Devices.Scanner.Port = sim.Path(possim.ScannerName)
	cfg.Devices.Printer.Port = sim.Path(possim.PrinterName)
	cfg.Devices.Display.Port = sim.Path(possim.DisplayName)
	cfg.Devices.Printer.Baud = 115200
	cfg.Checkout.OrderPoll = Dur(100 * time.Millisecond)
	cfg.Checkout.QRSlip = false
	cfg.Merchant = MerchantConfig{Name: "CORNER SHOP", City: "BEIJING", Country: "CN", MCC: "5411",
		Accounts: []string{"26=D15600000000,05=A93FO3230Q"}, Header: []string{"Corner Shop"}, Footer: []string{"Thank you"}}
	pol, err := offline.ParsePolicy([]byte("methods: [emv-cpm]\nmax_count: 10\nlimits:\n  CNY: {per_transaction: \"500.00\", outstanding: \"1000.00\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Offline = pol
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e.cfg = cfg
	return e
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// start runs the agent and waits until it serves.
func (e *env) start() {
	e.t.Helper()
	ready := make(chan string, 1)
	log := slog.New(slog.NewJSONHandler(syncWriter{&e.logMu, e.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if e.quiet {
		log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if e.quiet {
		log = slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	a, err := New(context.Background(), e.cfg, Options{Log: log, Version: "test", Ready: func(addr string) { ready <- addr }, ShutdownGrace: 200 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.agent, e.stop, e.runErr = a, cancel, make(chan error, 1)
	go func() { e.runErr <- a.Run(ctx) }()
	select {
	case addr := <-ready:
		e.url = "http://" + addr
	case err := <-e.runErr:
		e.t.Fatalf("agent stopped: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("agent not ready in 10 s")
	}
	e.t.Cleanup(e.shutdown)
}

// shutdown stops the agent (SIGTERM's path) and waits for it.
func (e *env) shutdown() {
	if e.stop == nil {
		return
	}
	e.stop()
	e.stop = nil
	select {
	case err := <-e.runErr:
		if err != nil {
			e.t.Errorf("agent Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Error("agent did not stop in 15 s")
	}
}

// do sends an API request with the token and decodes the answer into out (if not nil).
func (e *env) do(method, path string, body any, out any) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, r)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

func (e *env) create(amount int64, key string, mode Mode) *Payment {
	e.t.Helper()
	var p Payment
	if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: amount, Currency: "CNY", IdempotencyKey: key, Mode: mode, Reference: "R-" + key}, &p); code != 201 {
		e.t.Fatalf("create: status %d", code)
	}
	return &p
}

func (e *env) scan(code string) {
	e.t.Helper()
	if err := e.sim.Scanner.Scan(code, possim.ScanOptions{Suffix: scanner.SuffixCR, AIM: "]Q1"}); err != nil {
		e.t.Fatal(err)
	}
}

// wait polls the payment until cond holds.
func (e *env) wait(id string, cond func(*Payment) bool) *Payment {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var p Payment
		e.do("GET", "/v1/payments/"+id, nil, &p)
		if cond(&p) {
			return &p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("payment %s: condition not met; last %+v\nlog:\n%s", id, p, e.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) logs() string {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	s := e.log.String()
	if len(s) > 8000 {
		s = s[len(s)-8000:]
	}
	return s
}

func done(p *Payment) bool { return !p.State.Open() }

// waitPhase waits until the checkout is in phase ph.
func (e *env) waitPhase(ph Phase) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.agent.mu.Lock()
		got := e.agent.phase
		e.agent.mu.Unlock()
		if got == ph {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("phase %s, want %s", got, ph)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// screen returns the customer display's two lines, trimmed.
func (e *env) screen() string {
	s := e.sim.Display.Screen()
	return strings.TrimSpace(s[0]) + " | " + strings.TrimSpace(s[1])
}

func (e *env) waitScreen(sub string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.screen(), sub) {
		if time.Now().After(deadline) {
			e.t.Fatalf("display shows %q, want %q", e.screen(), sub)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sse is a client of the event stream.
type sse struct {
	events chan received
	cancel context.CancelFunc
}

// received is an event and when the client read it.
type received struct {
	Event
	at time.Time
}

// subscribe reads /v1/events (from lastID, if set) into a channel.
func (e *env) subscribe(lastID string) *sse {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		e.t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sse{events: make(chan received, 1024), cancel: cancel}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var id, data string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = line[4:]
			case strings.HasPrefix(line, "data: "):
				data = line[6:]
			case line == "" && data != "":
				var ev Event
				if json.Unmarshal([]byte(data), &ev) == nil && ev.ID == id {
					s.events <- received{ev, time.Now()}
				}
				id, data = "", ""
			}
		}
	}()
	e.t.Cleanup(cancel)
	return s
}

// next waits for an event of type typ for which match holds.
func (s *sse) next(t testing.TB, typ string, match func(map[string]any) bool) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-s.events:
			m, _ := ev.Data.(map[string]any)
			if ev.Type == typ && (match == nil || match(m)) {
				return ev.Event
			}
		case <-timeout:
			t.Fatalf("no %s event", typ)
		}
	}
}

// journalState reads a sale's state from the journal file (the agent stopped).
func (e *env) journalState(key string) (posagent.State, error) {
	j, err := offline.Open(e.cfg.Journal, offline.Options{ReadOnly: true})
	if err != nil {
		return "", err
	}
	defer j.Close()
	r, err := j.ByIdempotencyKey(context.Background(), key)
	return r.State, err
}

// ledger returns the acquirer's ledger entry of the sale with the idempotency key.
func (e *env) ledger(key string) (wire.LedgerEntry, bool) {
	e.t.Helper()
	var got wire.LedgerEntry
	found := false
	err := e.store.Ledger(context.Background(), "T1", func(l wire.LedgerEntry) error {
		if l.IdempotencyKey == key {
			got, found = l, true
		}
		return nil
	})
	if err != nil {
		e.t.Fatalf("ledger: %v", err)
	}
	return got, found
}

// agree checks that the counter and the acquirer agree on a finished payment: approved
// at the counter ⇔ captured at the acquirer; anything else ⇒ nothing captured.
func (e *env) agree(p *Payment) {
	e.t.Helper()
	l, _ := e.ledger(p.IdempotencyKey)
	switch {
	case p.State == PaymentApproved && l.Captured != p.Amount:
		e.t.Errorf("%s approved at the counter, the acquirer captured %d (%s)", p.IdempotencyKey, l.Captured, l.State)
	case p.State != PaymentApproved && !p.State.Accepted() && l.Captured != 0:
		e.t.Errorf("%s %s at the counter, the acquirer captured %d (%s)", p.IdempotencyKey, p.State, l.Captured, l.State)
	}
}

// waitReversals waits until the agent's journal has no reversal left to send: the
// acquirer acknowledged every one.
func (e *env) waitReversals() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		revs, err := e.agent.journal.PendingReversals(context.Background())
		if err == nil && len(revs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("reversals still pending: %+v %v", revs, err)
		}
		e.agent.kickReconcile()
		time.Sleep(20 * time.Millisecond)
	}
}
