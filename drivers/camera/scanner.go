package camera

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/qr"
)

// Config configures a Scanner.
type Config struct {
	// Forget is how long (on the frames' clock) a code must be out of view before it is
	// reported again when it comes back; 0 means 2 s. Frames in which nothing is read
	// (a blurred or tilted frame while the customer moves the phone) do not end the
	// code's presence before that, so one presentation gives one scan.
	Forget time.Duration
	// Repeat, if positive, reports a code that stays in view again after this long; 0
	// never does.
	Repeat time.Duration
	// PerFrame is qr.FrameDecoder.PerFrame: the expensive decoding attempts each frame
	// gets, taking turns. 0 means 2.
	PerFrame int
	// NoDrop makes the reader wait for the decoder instead of replacing the frame it has
	// not taken: every frame is decoded. For replaying recordings as fast as they decode
	// (a live camera would fall behind).
	NoDrop bool
	// Classifier classifies codes; nil means the built-in table.
	Classifier *qr.Classifier
	// Logger gets unreadable frames (the reason, never a code) at Warn; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Stats counts what a Scanner did.
type Stats struct {
	Frames  int64 // frames the source delivered
	Dropped int64 // frames replaced by a newer one before the decoder was free
	Decoded int64 // frames decoded (read or not)
	Read    int64 // frames in which a code was read
	Codes   int64 // codes reported (after removing repeats)
}

// Scanner decodes the frames of a Source continuously and returns each code once, as a
// serial scanner.Scanner does. CPU is bounded: one goroutine reads frames into a single
// slot, overwriting a frame the decoder has not taken yet (dropped, never queued); one
// decodes the newest frame, at most one at a time, trying the region of the last code
// first.
type Scanner struct {
	src   Source
	cfg   Config
	cls   *qr.Classifier
	log   *slog.Logger
	slot  chan Image
	scans chan scanner.Scan
	done  chan struct{} // closed by Close
	ended chan struct{} // closed when the decoder stops; err is then set
	err   error
	once  sync.Once
	stop  context.CancelFunc

	frames, dropped, decoded, read, codes atomic.Int64
}

// NewScanner starts decoding src; Close stops it and closes src.
func NewScanner(src Source, cfg Config) *Scanner {
	if cfg.Forget <= 0 {
		cfg.Forget = 2 * time.Second
	}
	s := &Scanner{
		src: src, cfg: cfg, cls: cfg.Classifier, log: cfg.Logger,
		slot: make(chan Image, 1), scans: make(chan scanner.Scan, 16),
		done: make(chan struct{}), ended: make(chan struct{}),
	}
	if s.cls == nil {
		s.cls = &qr.Classifier{Table: qr.DefaultTable()}
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go s.readLoop(ctx)
	go s.decodeLoop()
	return s
}

// Stats returns the counts so far.
func (s *Scanner) Stats() Stats {
	return Stats{Frames: s.frames.Load(), Dropped: s.dropped.Load(), Decoded: s.decoded.Load(), Read: s.read.Load(), Codes: s.codes.Load()}
}

// readLoop moves frames from the source to the slot, replacing a frame not yet taken.
func (s *Scanner) readLoop(ctx context.Context) {
	defer close(s.slot)
	for {
		img, err := s.src.Next(ctx)
		if err != nil {
			if errors.Is(err, posagent.ErrInvalidInput) { // one bad frame
				s.log.Warn("camera: frame skipped", "err", err)
				continue
			}
			s.err = err // read by decodeLoop after the slot is closed
			return
		}
		s.frames.Add(1)
		if s.cfg.NoDrop {
			select {
			case s.slot <- img:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
			continue
		}
		select {
		case s.slot <- img:
		default:
			select {
			case <-s.slot:
				s.dropped.Add(1)
			default: // taken meanwhile
			}
			s.slot <- img // only this goroutine sends: there is room now
		}
	}
}

// decodeLoop decodes the newest frame whenever it is free.
func (s *Scanner) decodeLoop() {
	defer close(s.ended)
	dec := qr.FrameDecoder{PerFrame: s.cfg.PerFrame}
	dd := dedup{forget: s.cfg.Forget, repeat: s.cfg.Repeat}
	for img := range s.slot {
		f, err := dec.Decode(img.Image)
		s.decoded.Add(1)
		if err != nil {
			if !errors.Is(err, qr.ErrNoCode) {
				s.log.Warn("camera: frame not decoded", "err", err)
			}
			continue
		}
		s.read.Add(1)
		if !dd.see(f.Text, img.At) {
			continue
		}
		s.codes.Add(1)
		sc := scanner.Scan{Code: f.Text, Classification: s.cls.Classify(f.Text), At: img.At}
		select {
		case s.scans <- sc:
		case <-s.done:
			return
		}
	}
	// s.err was set before the slot was closed.
	if s.err == nil || errors.Is(s.err, context.Canceled) {
		s.err = ErrClosed
	}
}

// Next returns the next code, waiting until one is read, ctx ends (ctx.Err()), the
// source ends (io.EOF: the last frames of a recording are decoded first) or fails, or
// the Scanner is closed (ErrClosed). It is not safe for concurrent calls.
func (s *Scanner) Next(ctx context.Context) (scanner.Scan, error) {
	select {
	case sc := <-s.scans:
		return sc, nil
	default:
	}
	select {
	case sc := <-s.scans:
		return sc, nil
	case <-ctx.Done():
		return scanner.Scan{}, ctx.Err()
	case <-s.done:
		return scanner.Scan{}, ErrClosed
	case <-s.ended:
		select {
		case sc := <-s.scans: // read before the end
			return sc, nil
		default:
		}
		if errors.Is(s.err, io.EOF) {
			return scanner.Scan{}, io.EOF
		}
		return scanner.Scan{}, s.err
	}
}

// Close stops decoding, closes the source and waits for the decoder to stop.
func (s *Scanner) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		s.stop()
		err = s.src.Close()
		for range s.slot { // unblock and drain; the reader closes the slot
		}
		<-s.ended
	})
	return err
}

// dedup decides which reads are new codes: a code is reported when it differs from the
// last one, when the last one has been out of view for forget, or (repeat > 0) when it
// was last reported repeat ago. Times are the frames' own.
type dedup struct {
	forget, repeat time.Duration
	code           string
	seen, reported time.Time
}

// see records that code was read in a frame taken at and reports whether it is new.
func (d *dedup) see(code string, at time.Time) bool {
	if code == d.code && at.Sub(d.seen) < d.forget && (d.repeat <= 0 || at.Sub(d.reported) < d.repeat) {
		d.seen = at
		return false
	}
	d.code, d.seen, d.reported = code, at, at
	return true
}
