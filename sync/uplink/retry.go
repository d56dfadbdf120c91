package uplink

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FullJitter returns the backoff for retries: before retry n (0 for the first retry) wait
// a uniformly random time in [0, min(cap, base·2ⁿ)). "Full jitter" spreads the retries of
// a fleet of terminals that lost the acquirer at the same moment, so they do not come back
// in step; the cap bounds the wait however long the outage.
func FullJitter(base, cap time.Duration) func(attempt int) time.Duration {
	if base <= 0 {
		base = time.Millisecond
	}
	if cap < base {
		cap = base
	}
	return func(attempt int) time.Duration {
		ceiling := cap
		if attempt < 62 {
			if d := base << attempt; d > 0 && d < cap {
				ceiling = d
			}
		}
		return time.Duration(rand.Int64N(int64(ceiling)))
	}
}

// MaxRetryAfter bounds how long a Retry-After header can make the client wait.
const MaxRetryAfter = 5 * time.Minute

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or an HTTP-date)
// relative to now. ok is false when the header is absent or malformed; the delay is
// clamped to [0, MaxRetryAfter].
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter, true
			}
			return 0, false
		}
		if secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter), true
}

// BreakerState is the state of a circuit breaker.
type BreakerState int

// The states: Closed lets every request through; Open refuses them until the cool-down
// has passed; HalfOpen lets one probe through, whose outcome closes or reopens it.
const (
	Closed BreakerState = iota
	Open
	HalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("BreakerState(%d)", int(s))
}

// ErrCircuitOpen is the sentinel of a request the circuit breaker refused without
// sending it: the acquirer failed too often lately. See *CircuitOpenError.
var ErrCircuitOpen = errors.New("acquirer circuit breaker open")

// CircuitOpenError is a request refused by the breaker; Until is when it lets a probe
// through.
type CircuitOpenError struct{ Until time.Time }

func (e *CircuitOpenError) Error() string {
	return fmt.Sprintf("%v: the acquirer failed repeatedly; next try at %s", ErrCircuitOpen, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap returns ErrCircuitOpen.
func (e *CircuitOpenError) Unwrap() error { return ErrCircuitOpen }

// Breaker is a circuit breaker: after Threshold consecutive failures (transport errors,
// timeouts, 5xx) it opens and refuses requests for Cooldown, so a terminal neither hammers
// a sick acquirer nor makes the cashier wait on calls that will fail; then it lets one
// probe through (half-open), which closes it on success and reopens it on failure.
// It is safe for concurrent use.
type Breaker struct {
	Threshold int           // consecutive failures that open it (5 when 0)
	Cooldown  time.Duration // how long it stays open (30 s when 0)
	Now       func() time.Time

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool
}

// NewBreaker returns a closed breaker.
func NewBreaker(threshold int, cooldown time.Duration) *Breaker {
	return &Breaker{Threshold: threshold, Cooldown: cooldown}
}

func (b *Breaker) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Breaker) cooldown() time.Duration {
	if b.Cooldown <= 0 {
		return 30 * time.Second
	}
	return b.Cooldown
}

// Allow reports whether a request may be sent now: nil, or a *CircuitOpenError. Every
// allowed request must be followed by exactly one of Success, Failure or Abandon.
func (b *Breaker) Allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case Open:
		until := b.openedAt.Add(b.cooldown())
		if b.now().Before(until) {
			return &CircuitOpenError{Until: until}
		}
		b.state, b.probing = HalfOpen, true
		return nil
	case HalfOpen:
		if b.probing {
			return &CircuitOpenError{Until: b.now().Add(b.cooldown())}
		}
		b.probing = true
	}
	return nil
}

// Success records a request the acquirer answered: the breaker closes.
func (b *Breaker) Success() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.state, b.failures, b.probing = Closed, 0, false
}

// Failure records a failed request: a failed probe reopens the breaker, and Threshold
// consecutive failures open it.
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	threshold := b.Threshold
	if threshold <= 0 {
		threshold = 5
	}
	if b.state == HalfOpen || b.failures >= threshold {
		b.state, b.openedAt = Open, b.now()
	}
	b.probing = false
}

// Abandon records a request that ended without telling anything about the acquirer (the
// caller gave up, or it asked to slow down): a probe slot is released.
func (b *Breaker) Abandon() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

// State returns the breaker's state (Open stays Open until a request is allowed after the
// cool-down).
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}
