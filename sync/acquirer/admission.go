package acquirer

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// Limits is the endpoint's admission control: what it takes on at once, and how big a
// request may be. Under overload it answers 429 with Retry-After at once, instead of
// letting requests queue until they time out or the store fails them. The zero value of
// each field is its default.
type Limits struct {
	// MaxInFlight is how many signed requests are handled at once, all terminals together
	// (DefaultMaxInFlightSQLite on the SQLite store, whose one writer serialises them, else
	// DefaultMaxInFlight). A request beyond it waits up to QueueWait for a slot, then is
	// answered 429. More in flight than the store can work on at once only makes each
	// wait longer: the answer time grows with the limit, not the throughput.
	MaxInFlight int
	// QueueWait is how long a request waits for a global slot (DefaultQueueWait).
	QueueWait time.Duration
	// PerTerminal is how many requests of one terminal are handled at once
	// (DefaultPerTerminal); one more is answered 429 at once. It applies after the
	// signature is checked, so no one can use up another terminal's share.
	PerTerminal int
	// RetryAfter is what a 429 asks the terminal to wait (DefaultRetryAfter; whole seconds,
	// at least 1).
	RetryAfter time.Duration
	// MaxBody bounds a request's body in bytes (signing.MaxBody, which is also the most it
	// may be): a longer one is answered 413.
	MaxBody int64
	// MaxBatch bounds the records of one batch (wire.MaxBatch, also the most it may be): a
	// bigger batch is answered 413.
	MaxBatch int
}

// Defaults of Limits.
const (
	DefaultQueueWait   = 100 * time.Millisecond
	DefaultPerTerminal = 2
	DefaultRetryAfter  = time.Second
)

// DefaultMaxInFlight is the default of Limits.MaxInFlight on PostgreSQL: 4 per CPU, at
// least 8.
func DefaultMaxInFlight() int { return max(8, 4*runtime.GOMAXPROCS(0)) }

// DefaultMaxInFlightSQLite is the default of Limits.MaxInFlight on the SQLite store.
const DefaultMaxInFlightSQLite = 4

// withDefaults returns l with every zero field set to its default and every field
// clamped to what the protocol allows.
func (l Limits) withDefaults() Limits {
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight()
	}
	if l.QueueWait <= 0 {
		l.QueueWait = DefaultQueueWait
	}
	if l.PerTerminal <= 0 {
		l.PerTerminal = DefaultPerTerminal
	}
	if l.RetryAfter < time.Second {
		l.RetryAfter = DefaultRetryAfter
	}
	if l.MaxBody <= 0 || l.MaxBody > signing.MaxBody {
		l.MaxBody = signing.MaxBody
	}
	if l.MaxBatch <= 0 || l.MaxBatch > wire.MaxBatch {
		l.MaxBatch = wire.MaxBatch
	}
	return l
}

// retryAfterHeader is the Retry-After value for d: whole seconds, rounded up.
func retryAfterHeader(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// admission holds the global slots and the per-terminal counts.
type admission struct {
	limits Limits
	slots  chan struct{}
	mu     sync.Mutex
	busy   map[string]int // requests in flight by terminal
}

func newAdmission(l Limits) *admission {
	return &admission{limits: l, slots: make(chan struct{}, l.MaxInFlight), busy: map[string]int{}}
}

// enter takes a global slot, waiting up to QueueWait (or until ctx ends); false when
// none came free: the caller answers 429.
func (a *admission) enter(ctx context.Context) bool {
	select {
	case a.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(a.limits.QueueWait)
	defer t.Stop()
	select {
	case a.slots <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (a *admission) leave() { <-a.slots }

// enterTerminal takes one of the terminal's slots; false when it has PerTerminal in flight.
func (a *admission) enterTerminal(terminal string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy[terminal] >= a.limits.PerTerminal {
		return false
	}
	a.busy[terminal]++
	return true
}

func (a *admission) leaveTerminal(terminal string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy[terminal]--; a.busy[terminal] <= 0 {
		delete(a.busy, terminal)
	}
}

// tooBusy answers 429 with Retry-After.
func (s *Server) tooBusy(w http.ResponseWriter, scope, msg string) int {
	s.metrics.throttled.WithLabelValues(scope).Inc()
	w.Header().Set("Retry-After", retryAfterHeader(s.adm.limits.RetryAfter))
	return writeError(w, http.StatusTooManyRequests, wire.CodeRateLimited, msg)
}

// limitedBody fails a read beyond n bytes with an error wrapping signing.ErrTooLarge, which
// the endpoint answers 413.
type limitedBody struct {
	r   io.ReadCloser
	n   int64 // bytes still allowed
	max int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", signing.ErrTooLarge, b.max)
	}
	if int64(len(p)) > b.n+1 {
		p = p[:b.n+1]
	}
	n, err := b.r.Read(p)
	b.n -= int64(n)
	if b.n < 0 {
		return n, fmt.Errorf("%w: more than %d bytes", signing.ErrTooLarge, b.max)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.r.Close() }
