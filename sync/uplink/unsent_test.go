package uplink

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// listener serves loopback connections with handle, each in its own goroutine, until
// the test ends.
func listener(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); handle(conn) }()
		}
	}()
	return "http://" + ln.Addr().String()
}

// closedPort returns the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

func testClient(t *testing.T, url string, attempts int) *Client {
	t.Helper()
	key, err := offline.NewKey(bytes.Repeat([]byte{0x5a}, offline.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(url, "T1", key)
	if err != nil {
		t.Fatal(err)
	}
	c.MaxAttempts, c.Backoff, c.Breaker = attempts, func(int) time.Duration { return 0 }, nil
	return c
}

func walletSale(id string, amount int64) wire.AuthorizationRequest {
	return wire.AuthorizationRequest{ID: id, Sequence: 1, IdempotencyKey: "k-" + id, CapturedAt: time.Now().UTC(),
		Amount: amount, Currency: "CNY", Method: "wallet-code", Credential: "134567890123456789"}
}

// TestUnsent: only a call none of whose attempts got a connection to the acquirer is
// Unsent; a connection closed after it was made, a request that is never answered, a 5xx
// answer, and a breaker refusal after one attempt was sent are all "maybe sent".
func TestUnsent(t *testing.T) {
	tests := []struct {
		name     string
		url      func(t *testing.T) string
		attempts int
		timeout  time.Duration
		breaker  *Breaker
		unsent   bool
	}{
		{"connection refused", closedPort, 3, 0, nil, true},
		{"no such host", func(*testing.T) string { return "http://posagent-test.invalid" }, 2, 0, nil, true},
		{"closed after accept", func(t *testing.T) string {
			return listener(t, func(c net.Conn) { c.Close() })
		}, 3, 0, nil, false},
		{"closed after reading the request", func(t *testing.T) string {
			return listener(t, func(c net.Conn) { c.Read(make([]byte, 4096)); c.Close() })
		}, 1, 0, nil, false},
		{"never answered", func(t *testing.T) string {
			// reads until the client gives up and closes
			return listener(t, func(c net.Conn) { io.Copy(io.Discard, c); c.Close() })
		}, 2, 100 * time.Millisecond, nil, false},
		{"5xx", func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		}, 2, 0, nil, false},
		{"breaker open", closedPort, 3, 0, func() *Breaker { b := NewBreaker(1, time.Hour); b.Allow(); b.Failure(); return b }(), true},
		{"sent, then the breaker opens", func(t *testing.T) string {
			return listener(t, func(c net.Conn) { c.Close() })
		}, 3, 0, NewBreaker(1, time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testClient(t, tt.url(t), tt.attempts)
			c.Breaker = tt.breaker
			if tt.timeout > 0 {
				c.HTTP.Timeout = tt.timeout
			}
			_, err := c.Authorize(t.Context(), walletSale("s1", 1250))
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if got := Unsent(err); got != tt.unsent {
				t.Fatalf("Unsent(%v) = %v, want %v", err, got, tt.unsent)
			}
			if got := errors.Is(err, ErrMaybeSent); got == tt.unsent {
				t.Fatalf("errors.Is(%v, ErrMaybeSent) = %v, want %v", err, got, !tt.unsent)
			}
			if !Temporary(err) {
				t.Fatalf("%v is not Temporary", err)
			}
		})
	}
	for _, err := range []error{nil, errors.New("other"), context.Canceled} {
		if Unsent(err) {
			t.Errorf("Unsent(%v) = true, want false (not a Client call's error)", err)
		}
	}
}

// TestClient_LostAnswer: the acquirer approves and stores, then drops the connection
// (SimLostAnswer): the client sees a transport error that is not Unsent, and the
// authorization's status then says approved; reversing it gives the money back, and the
// reversal answers the same when repeated.
func TestClient_LostAnswer(t *testing.T) {
	e := newEnv(t)
	c := testClient(t, e.serve(nil), 2)
	sale := walletSale("s94", 1200+acquirer.SimLostAnswer)
	_, err := c.Authorize(t.Context(), sale)
	var te *TransportError
	if !errors.As(err, &te) || Unsent(err) {
		t.Fatalf("authorize: %v, want a transport error that may have been sent", err)
	}
	st, err := c.AuthorizationStatus(t.Context(), sale.ID)
	if err != nil || st.State != string(wire.Approved) || st.Amount != 1294 || st.Currency != "CNY" || st.AuthCode == "" {
		t.Fatalf("status: %+v %v, want approved", st, err)
	}
	rev := wire.ReversalRequest{ID: sale.ID, Sequence: 1, IdempotencyKey: sale.IdempotencyKey, Amount: 1294, Currency: "CNY", Reason: "answer lost"}
	first, err := c.Reverse(t.Context(), rev)
	if err != nil || first.State != "reversed" || first.Previous != "approved" {
		t.Fatalf("reverse: %+v %v", first, err)
	}
	again, err := c.Reverse(t.Context(), rev)
	if err != nil || again != first {
		t.Fatalf("reverse again: %+v %v, want %+v", again, err, first)
	}
	if st, _ := c.AuthorizationStatus(t.Context(), sale.ID); st.State != "reversed" {
		t.Fatalf("status after the reversal: %+v", st)
	}
	if _, err := c.AuthorizationStatus(t.Context(), "never-sent"); err != nil {
		t.Fatal(err)
	}
	other := testClient(t, e.srv.URL, 1)
	other.Terminal = "T9"
	if _, err := other.AuthorizationStatus(t.Context(), sale.ID); err == nil || Unsent(err) {
		t.Fatalf("an unknown terminal: %v, want an answered refusal", err)
	}
}

// TestClient_PendingAndBadGateway: through the client, a pending_customer authorization
// (SimPendingApprove) is polled until approved on the acquirer's clock; one that never
// resolves (SimPendingForever) is reversed; a 502 after a stored approval (SimBadGateway)
// is an answered, temporary failure, never Unsent, and the status says approved.
func TestClient_PendingAndBadGateway(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e.handler = acquirer.New(e.store, acquirer.Options{SimPending: 3 * time.Second, Now: clock})
	c := testClient(t, e.serve(nil), 2)
	ctx := t.Context()

	pending := walletSale("s96", 1200+acquirer.SimPendingApprove)
	if resp, err := c.Authorize(ctx, pending); err != nil || resp.Decision != wire.PendingCustomer {
		t.Fatalf("authorize: %+v %v, want pending_customer", resp, err)
	}
	if st, err := c.AuthorizationStatus(ctx, pending.ID); err != nil || st.State != "pending_customer" {
		t.Fatalf("status: %+v %v", st, err)
	}
	mu.Lock()
	now = now.Add(3 * time.Second)
	mu.Unlock()
	if st, err := c.AuthorizationStatus(ctx, pending.ID); err != nil || st.State != "approved" || st.AuthCode == "" {
		t.Fatalf("status after the customer confirmed: %+v %v, want approved", st, err)
	}

	never := walletSale("s98", 1200+acquirer.SimPendingForever)
	if resp, err := c.Authorize(ctx, never); err != nil || resp.Decision != wire.PendingCustomer {
		t.Fatalf("authorize: %+v %v", resp, err)
	}
	rev, err := c.Reverse(ctx, wire.ReversalRequest{ID: never.ID, Sequence: 1, IdempotencyKey: never.IdempotencyKey, Amount: never.Amount, Currency: "CNY"})
	if err != nil || rev.Previous != "pending_customer" {
		t.Fatalf("reverse: %+v %v", rev, err)
	}
	if resp, err := c.Authorize(ctx, never); err != nil || resp.Decision != wire.Reversed {
		t.Fatalf("authorize after the reversal: %+v %v, want reversed", resp, err)
	}

	gw := walletSale("s99", 1200+acquirer.SimBadGateway)
	_, err = c.Authorize(ctx, gw)
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadGateway || Unsent(err) || !Temporary(err) {
		t.Fatalf("authorize: %v, want a 502 that may have been sent", err)
	}
	if got := c.Stats().Requests; got < 2 {
		t.Fatalf("%d requests: the 502 was not retried", got)
	}
	if st, err := c.AuthorizationStatus(ctx, gw.ID); err != nil || st.State != "approved" {
		t.Fatalf("status after the 502: %+v %v, want approved", st, err)
	}
}
