package scanner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/posagent/posagent/qr"
)

// Serial trigger commands of Honeywell-style scanners in "serial trigger" mode: the
// scanner reads after SYN T CR until it has a code or its read timeout ends; SYN U CR
// stops it.
var (
	TriggerOn  = []byte{0x16, 'T', '\r'}
	TriggerOff = []byte{0x16, 'U', '\r'}
)

// TimeoutSetter is what a port offers for reads that return 0, nil when nothing came in
// time (drivers/serial.Port does). Without it, the inter-byte gap cannot be seen and a
// cancelled context is noticed only when bytes arrive.
type TimeoutSetter interface {
	SetReadTimeout(time.Duration) error
}

// Config configures a Scanner.
type Config struct {
	Frame FrameConfig
	// Gap is the inter-byte timeout: a line quiet for this long ends a frame (SuffixNone)
	// or abandons an unfinished one. 0 means 80 ms, well above the gaps inside one code at
	// 9600 baud and shorter than a person presenting the next code.
	Gap time.Duration
	// Trigger sends TriggerOn when Next starts waiting and TriggerOff when it gives up, for
	// scanners configured for serial trigger; TriggerEvery > 0 re-sends TriggerOn that often
	// while waiting (the scanner's own read timeout ends each activation).
	Trigger      bool
	TriggerEvery time.Duration
	// Classifier classifies codes; nil means the built-in table.
	Classifier *qr.Classifier
	// Logger gets rejected frames (reason and length, never the bytes) at Warn; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Scan is one code read.
type Scan struct {
	// Code is the code as read, prefix and AIM identifier removed. It may be a payment
	// credential: never log it.
	Code string
	// Classification is what qr.Classify made of it, with AIM set to the identifier the
	// framer stripped.
	Classification qr.Classification
	At             time.Time
}

// Stats counts what a Scanner saw.
type Stats struct {
	Codes, Rejected int
}

// Scanner reads codes from a scanner on rw. It is not safe for concurrent Next calls.
type Scanner struct {
	rw    io.ReadWriter
	cfg   Config
	fr    *Framer
	log   *slog.Logger
	cls   *qr.Classifier
	queue []Scan
	buf   []byte
	last  time.Time // when the last byte came
	stats Stats
}

// New returns a Scanner reading from rw. If rw is a TimeoutSetter its read timeout is set
// to a fraction of the gap.
func New(rw io.ReadWriter, cfg Config) (*Scanner, error) {
	if cfg.Gap <= 0 {
		cfg.Gap = 80 * time.Millisecond
	}
	s := &Scanner{rw: rw, cfg: cfg, fr: NewFramer(cfg.Frame), log: cfg.Logger, cls: cfg.Classifier, buf: make([]byte, 512)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.cls == nil {
		s.cls = &qr.Classifier{Table: qr.DefaultTable()}
	}
	if ts, ok := rw.(TimeoutSetter); ok {
		if err := ts.SetReadTimeout(max(cfg.Gap/2, time.Millisecond)); err != nil {
			return nil, fmt.Errorf("scanner: set read timeout: %w", err)
		}
	}
	return s, nil
}

// Stats returns the counts so far.
func (s *Scanner) Stats() Stats { return s.stats }

// SetTrigger starts (on) or stops a scanner in serial-trigger mode.
func (s *Scanner) SetTrigger(on bool) error {
	cmd := TriggerOff
	if on {
		cmd = TriggerOn
	}
	if _, err := s.rw.Write(cmd); err != nil {
		return fmt.Errorf("scanner: trigger: %w", err)
	}
	return nil
}

// Next returns the next code, waiting until one is read or ctx ends (ctx.Err()) or the
// port fails (its error, e.g. serial.ErrClosed or io.EOF). Rejected frames are logged and
// counted, not returned.
func (s *Scanner) Next(ctx context.Context) (Scan, error) {
	if len(s.queue) > 0 {
		return s.pop(), nil
	}
	var triggered time.Time
	if s.cfg.Trigger {
		if err := s.SetTrigger(true); err != nil {
			return Scan{}, err
		}
		triggered = time.Now()
		defer func() {
			if len(s.queue) == 0 { // given up: stop the scanner
				s.SetTrigger(false)
			}
		}()
	}
	for len(s.queue) == 0 {
		if err := ctx.Err(); err != nil {
			return Scan{}, err
		}
		n, err := s.rw.Read(s.buf)
		now := time.Now()
		if n > 0 {
			s.last = now
			s.add(s.fr.Feed(s.buf[:n]), now)
		} else if s.fr.Pending() > 0 && now.Sub(s.last) >= s.cfg.Gap {
			s.add(s.fr.Flush(), now)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				s.add(s.fr.Flush(), now)
				if len(s.queue) > 0 {
					break
				}
			}
			return Scan{}, err
		}
		if s.cfg.Trigger && s.cfg.TriggerEvery > 0 && len(s.queue) == 0 && now.Sub(triggered) >= s.cfg.TriggerEvery {
			if err := s.SetTrigger(true); err != nil {
				return Scan{}, err
			}
			triggered = now
		}
	}
	return s.pop(), nil
}

func (s *Scanner) pop() Scan {
	sc := s.queue[0]
	s.queue = s.queue[1:]
	return sc
}

func (s *Scanner) add(frames []Frame, at time.Time) {
	for _, f := range frames {
		if f.Err != nil {
			s.stats.Rejected++
			s.log.Warn("scanner: input rejected", "reason", f.Err.Error(), "bytes", f.Len)
			continue
		}
		s.stats.Codes++
		cl := s.cls.Classify(f.Code)
		if cl.AIM == "" {
			cl.AIM = f.AIM
		}
		s.queue = append(s.queue, Scan{Code: f.Code, Classification: cl, At: at})
	}
}
