package uplink

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

func TestFullJitter(t *testing.T) {
	b := FullJitter(10*time.Millisecond, 80*time.Millisecond)
	for attempt, ceiling := range []time.Duration{10, 20, 40, 80, 80, 80} {
		ceiling *= time.Millisecond
		var most time.Duration
		for range 2000 {
			d := b(attempt)
			if d < 0 || d >= ceiling {
				t.Fatalf("attempt %d: %s outside [0, %s)", attempt, d, ceiling)
			}
			most = max(most, d)
		}
		if most < ceiling/2 {
			t.Errorf("attempt %d: largest of 2000 waits %s, want spread up to %s", attempt, most, ceiling)
		}
	}
	if d := b(1000); d < 0 || d >= 80*time.Millisecond {
		t.Fatalf("huge attempt: %s", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{"2", 2 * time.Second, true},
		{" 7 ", 7 * time.Second, true},
		{"99999999999999999999999", MaxRetryAfter, true},
		{"3600", MaxRetryAfter, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"Fri, 01 May 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Fri, 01 May 2026 11:00:00 GMT", 0, true},
		{"soon", 0, false},
	}
	for _, tt := range tests {
		got, ok := ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseRetryAfter(%q) = %s, %v; want %s, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "120", "Fri, 01 May 2026 12:00:30 GMT", "1e3", "-5"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseRetryAfter(s, now)
		if d < 0 || d > MaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %s, %v", s, d, ok)
		}
	})
}

func TestBreaker(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	b := &Breaker{Threshold: 3, Cooldown: time.Minute, Now: func() time.Time { return now }}
	for i := range 3 {
		if err := b.Allow(); err != nil {
			t.Fatalf("failure %d: refused while closed: %v", i, err)
		}
		b.Failure()
	}
	if got, want := b.State(), Open; got != want {
		t.Fatalf("after 3 failures: %s, want %s", got, want)
	}
	var open *CircuitOpenError
	if err := b.Allow(); !errors.As(err, &open) || !errors.Is(err, ErrCircuitOpen) || !open.Until.Equal(now.Add(time.Minute)) {
		t.Fatalf("open: %v", err)
	}
	now = now.Add(time.Minute)
	if err := b.Allow(); err != nil || b.State() != HalfOpen {
		t.Fatalf("after the cool-down: %v %s, want a probe, half-open", err, b.State())
	}
	if err := b.Allow(); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("second request while probing: %v, want refused", err)
	}
	b.Failure()
	if b.State() != Open || b.Allow() == nil {
		t.Fatalf("failed probe: %s, want open again", b.State())
	}
	now = now.Add(time.Minute)
	b.Allow()
	b.Success()
	if b.State() != Closed || b.Allow() != nil {
		t.Fatalf("good probe: %s, want closed", b.State())
	}
	b.Failure()
	b.Failure()
	b.Success()
	b.Failure()
	if b.State() != Closed {
		t.Fatal("failures that are not consecutive opened the breaker")
	}
}

// TestClient_Retries: 503 and 429 are retried (429 after its Retry-After), the acquirer's
// answer then comes through; a 4xx is not retried; a stalled endpoint times out; a dead one
// opens the breaker, which then refuses without sending.
func TestClient_Retries(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var calls atomic.Int64
	var mode atomic.Value
	mode.Store("")
	var limitedAt, retriedAt atomic.Int64
	url := e.serve(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := calls.Add(1)
			switch mode.Load() {
			case "503 twice":
				if n <= 2 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return
				}
			case "429 once":
				if n == 1 {
					limitedAt.Store(time.Now().UnixNano())
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusTooManyRequests)
					return
				}
				retriedAt.Store(time.Now().UnixNano())
			case "stall":
				select {
				case <-r.Context().Done():
				case <-time.After(2 * time.Second):
				}
				return
			case "down":
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	c := e.client(url)

	mode.Store("503 twice")
	if _, err := c.Ping(ctx); err == nil {
		t.Fatal("ping: a 503 must not count as online")
	}
	if _, err := c.Config(ctx); err != nil || calls.Load() != 3 {
		t.Fatalf("config after two 503s: %v after %d calls, want success on the 3rd", err, calls.Load())
	}

	calls.Store(0)
	mode.Store("429 once")
	if _, err := c.Config(ctx); err != nil {
		t.Fatalf("config after a 429: %v", err)
	}
	if wait := time.Duration(retriedAt.Load() - limitedAt.Load()); wait < time.Second {
		t.Fatalf("retried %s after 429 Retry-After: 1, want at least 1 s", wait)
	}

	mode.Store("")
	_, err := c.Results(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	_, err = c.Order(ctx, "this-reference-is-far-too-long-for-emv")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 400 || calls.Load() != 1 || Temporary(err) {
		t.Fatalf("bad request: %v after %d calls, want one 400, not retried", err, calls.Load())
	}

	mode.Store("stall")
	c.HTTP.Timeout = 100 * time.Millisecond
	c.MaxAttempts = 1
	var te *TransportError
	if _, err := c.Config(ctx); !errors.As(err, &te) || !Temporary(err) {
		t.Fatalf("stalled endpoint: %v, want a transport error (timeout)", err)
	}

	mode.Store("down")
	c.MaxAttempts = 10
	c.Breaker = NewBreaker(3, time.Hour)
	calls.Store(0)
	if _, err := c.Config(ctx); !errors.Is(err, ErrCircuitOpen) || calls.Load() != 3 {
		t.Fatalf("dead endpoint: %v after %d calls, want the breaker open after 3", err, calls.Load())
	}
	if _, err := c.Config(ctx); !errors.Is(err, ErrCircuitOpen) || calls.Load() != 3 {
		t.Fatalf("open breaker sent a request (%d calls): %v", calls.Load(), err)
	}
	mode.Store("")
	if _, err := c.Ping(ctx); err != nil || c.Breaker.State() != Closed {
		t.Fatalf("ping when back: %v, breaker %s; want online and closed", err, c.Breaker.State())
	}
}
