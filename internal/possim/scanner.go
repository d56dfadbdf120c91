package possim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/posagent/posagent/drivers/scanner"
)

// Scanner simulates a serial barcode/QR scanner: it sends codes when told to, framed as
// a configured scanner frames them, or line noise, and records the serial-trigger
// commands the host sends.
type Scanner struct {
	mu       sync.Mutex
	w        io.Writer // the current pty master; nil while unplugged
	triggers []string  // "on"/"off", in order received
	sent     int
}

// NewScanner returns a scanner with nothing plugged in.
func NewScanner() *Scanner { return &Scanner{} }

// ScanOptions say how one code goes on the line.
type ScanOptions struct {
	Suffix scanner.Suffix
	AIM    string // sent before the code, e.g. "]Q1"
	Prefix string // sent before everything
	// Chunk > 0 sends the frame in pieces of Chunk bytes, Gap apart, so the driver gets
	// partial reads.
	Chunk int
	Gap   time.Duration
}

// Serve makes rw the scanner's line and reads what the host sends (trigger commands)
// until ctx is done or rw fails.
func (s *Scanner) Serve(ctx context.Context, rw io.ReadWriter) error {
	s.mu.Lock()
	s.w = rw
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.w = nil
		s.mu.Unlock()
	}()
	return readLoop(ctx, rw, func(b []byte) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for {
			i := bytes.IndexByte(b, 0x16)
			if i < 0 || i+2 >= len(b) {
				return
			}
			switch b[i+1] {
			case 'T':
				s.triggers = append(s.triggers, "on")
			case 'U':
				s.triggers = append(s.triggers, "off")
			}
			b = b[i+2:]
		}
	})
}

// Scan sends a code.
func (s *Scanner) Scan(code string, o ScanOptions) error {
	frame := []byte(o.Prefix + o.AIM + code)
	frame = append(frame, o.Suffix.Bytes()...)
	return s.send(frame, o.Chunk, o.Gap)
}

// Noise sends n bytes of line noise (control and non-ASCII bytes, never a suffix byte)
// followed by the suffix, as a loose connector or a baud-rate mismatch produces.
func (s *Scanner) Noise(n int, suffix scanner.Suffix) error {
	b := make([]byte, 0, n+2)
	for len(b) < n {
		c := byte(rand.N(256))
		if (c >= 0x20 && c < 0x7F) || c == '\r' || c == '\n' || c == '\t' {
			continue
		}
		b = append(b, c)
	}
	return s.send(append(b, suffix.Bytes()...), 0, 0)
}

func (s *Scanner) send(b []byte, chunk int, gap time.Duration) error {
	if chunk <= 0 {
		chunk = len(b)
	}
	for i := 0; i < len(b); i += chunk {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		s.mu.Lock()
		w := s.w
		s.mu.Unlock()
		if w == nil {
			return fmt.Errorf("scanner: %w", ErrNotPlugged)
		}
		if _, err := w.Write(b[i:min(i+chunk, len(b))]); err != nil {
			return fmt.Errorf("scanner: %w", err)
		}
	}
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
	return nil
}

// Triggers returns the trigger commands received, "on" or "off" each.
func (s *Scanner) Triggers() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.triggers...)
}

// readLoop reads rw and hands each chunk to f until ctx is done or a read fails.
func readLoop(ctx context.Context, rw io.Reader, f func([]byte)) error {
	errc := make(chan error, 1)
	go func() {
		buf := make([]byte, 1024)
		for {
			n, err := rw.Read(buf)
			if n > 0 {
				f(buf[:n])
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return ctx.Err() // the reader ends when the caller closes rw
	}
}
