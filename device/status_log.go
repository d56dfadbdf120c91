package device

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"
)

// logLines is how many log lines the agent keeps in memory for the status page's log
// download; logErrors how many warnings and errors it keeps for "recent errors".
const (
	logLines  = 2000
	logErrors = 20
)

// logRing keeps the last log lines (as text) and the last warnings and errors.
type logRing struct {
	mu     sync.Mutex
	lines  []string
	next   int
	full   bool
	errs   []logError
	buf    bytes.Buffer
	format slog.Handler // text handler into buf, under mu
}

// logError is one recent warning or error, as the status page shows it.
type logError struct {
	At    time.Time `json:"at"`
	Level string    `json:"level"`
	Line  string    `json:"line"`
}

// wrapLog returns a ring and a logger that logs to log and, at info level and up, to the ring.
func wrapLog(log *slog.Logger) (*logRing, *slog.Logger) {
	r := &logRing{lines: make([]string, logLines)}
	r.format = slog.NewTextHandler(&r.buf, &slog.HandlerOptions{Level: slog.LevelInfo})
	return r, slog.New(&ringHandler{next: log.Handler(), ring: r, format: r.format})
}

func (r *logRing) add(rec slog.Record, h slog.Handler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
	if h.Handle(context.Background(), rec) != nil {
		return
	}
	line := string(bytes.TrimRight(r.buf.Bytes(), "\n"))
	r.lines[r.next] = line
	r.next = (r.next + 1) % len(r.lines)
	if r.next == 0 {
		r.full = true
	}
	if rec.Level >= slog.LevelWarn {
		r.errs = append(r.errs, logError{At: rec.Time.UTC(), Level: rec.Level.String(), Line: line})
		if len(r.errs) > logErrors {
			r.errs = r.errs[len(r.errs)-logErrors:]
		}
	}
}

// text is the kept lines, oldest first, one a line.
func (r *logRing) text() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b bytes.Buffer
	write := func(ls []string) {
		for _, l := range ls {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	if r.full {
		write(r.lines[r.next:])
	}
	write(r.lines[:r.next])
	return b.Bytes()
}

// recent is the kept warnings and errors, newest first.
func (r *logRing) recent() []logError {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]logError, 0, len(r.errs))
	for i := len(r.errs) - 1; i >= 0; i-- {
		out = append(out, r.errs[i])
	}
	return out
}

// ringHandler passes records to next and copies them into the ring. format carries the
// attributes and groups added with WithAttrs and WithGroup, so the ring's lines match.
type ringHandler struct {
	next   slog.Handler
	ring   *logRing
	format slog.Handler
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelInfo {
		h.ring.add(rec, h.format)
	}
	if h.next.Enabled(ctx, rec.Level) {
		return h.next.Handle(ctx, rec)
	}
	return nil
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &ringHandler{next: h.next.WithAttrs(as), ring: h.ring, format: h.format.WithAttrs(as)}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring, format: h.format.WithGroup(name)}
}
