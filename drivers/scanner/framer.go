// Package scanner reads codes from a barcode/QR scanner on a serial line: it frames the
// byte stream into codes (Framer, a pure state machine), strips the configured prefix and
// the AIM symbology identifier, rejects line noise with a reason, classifies each code with
// package qr, and drives the serial trigger of scanners that need one.
package scanner

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/posagent/posagent/qr"
)

// Suffix is what the scanner sends after each code.
type Suffix int

const (
	SuffixCR   Suffix = iota // "\r", the factory default of most scanners
	SuffixLF                 // "\n"
	SuffixCRLF               // "\r\n"
	SuffixTab                // "\t"
	SuffixNone               // nothing: a code ends when the line is quiet for the gap
)

var suffixNames = []string{"cr", "lf", "crlf", "tab", "none"}

// ParseSuffix reads "cr", "lf", "crlf", "tab" or "none" (any case).
func ParseSuffix(s string) (Suffix, error) {
	for i, n := range suffixNames {
		if strings.EqualFold(s, n) {
			return Suffix(i), nil
		}
	}
	return 0, fmt.Errorf("scanner suffix %q: want one of %s", s, strings.Join(suffixNames, ", "))
}

func (s Suffix) String() string {
	if s >= 0 && int(s) < len(suffixNames) {
		return suffixNames[s]
	}
	return fmt.Sprintf("Suffix(%d)", int(s))
}

// Bytes returns the bytes of the suffix.
func (s Suffix) Bytes() []byte {
	switch s {
	case SuffixCR:
		return []byte{'\r'}
	case SuffixLF:
		return []byte{'\n'}
	case SuffixCRLF:
		return []byte{'\r', '\n'}
	case SuffixTab:
		return []byte{'\t'}
	}
	return nil
}

// Reasons a frame is rejected, for errors.Is. Messages never contain the code itself,
// which may be a payment credential.
var (
	ErrTooLong    = errors.New("code too long")
	ErrTooShort   = errors.New("code too short")
	ErrControl    = errors.New("control byte in code")
	ErrNoise      = errors.New("not text (line noise?)")
	ErrNoPrefix   = errors.New("configured prefix missing")
	ErrIncomplete = errors.New("no suffix before the line went quiet")
)

// FrameConfig says how codes are framed on the line.
type FrameConfig struct {
	Suffix Suffix
	// Prefix, if set, is what the scanner sends before each code; it is stripped, and a
	// frame without it is rejected.
	Prefix string
	// MaxLen bounds a frame in bytes (prefix, AIM identifier and code); longer frames are
	// rejected whole. 0 means qr.MaxPayload + 64.
	MaxLen int
	// MinLen is the shortest code accepted, in bytes after stripping; 0 means 4, which
	// keeps stray bytes of noise that happen to be printable from passing as codes.
	MinLen int
}

// Frame is one framed code, or a rejected frame (Err set, Code empty).
type Frame struct {
	Code string // the code, prefix and AIM identifier removed
	AIM  string // the AIM symbology identifier that preceded it ("]Q1"), if any
	Err  error  // why the frame was rejected: wraps one of the Err* reasons
	Len  int    // bytes in the frame as received, without the suffix
}

// Framer cuts a byte stream into codes. It is a state machine without I/O or clock: Feed
// it bytes as they come (split anywhere, the result is the same), and call Flush when the
// line has been quiet for the inter-byte gap.
type Framer struct {
	cfg      FrameConfig
	buf      []byte
	over     int  // bytes dropped past MaxLen
	afterEnd bool // the last byte ended a frame (to swallow the LF of a CRLF in CR mode)
}

// NewFramer returns a Framer for cfg.
func NewFramer(cfg FrameConfig) *Framer {
	if cfg.MaxLen <= 0 {
		cfg.MaxLen = qr.MaxPayload + 64
	}
	if cfg.MinLen <= 0 {
		cfg.MinLen = 4
	}
	return &Framer{cfg: cfg}
}

// Pending returns how many bytes of an unfinished frame the framer holds.
func (f *Framer) Pending() int { return len(f.buf) + f.over }

// Feed takes the next bytes from the line and returns the frames they complete, in order.
// The suffixes are lenient where scanners are inconsistent: in CR mode an LF right after
// the CR is ignored; in LF and CRLF modes a CR right before the LF belongs to the suffix.
// Empty frames (a bare suffix) are dropped.
func (f *Framer) Feed(p []byte) []Frame {
	var out []Frame
	end := byte(0)
	switch f.cfg.Suffix {
	case SuffixCR:
		end = '\r'
	case SuffixLF, SuffixCRLF:
		end = '\n'
	case SuffixTab:
		end = '\t'
	}
	for _, c := range p {
		if f.cfg.Suffix != SuffixNone && c == end {
			b := f.buf
			if end == '\n' && f.over == 0 && len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			if fr, ok := f.finish(b); ok {
				out = append(out, fr)
			}
			f.reset()
			f.afterEnd = true
			continue
		}
		if f.afterEnd && f.cfg.Suffix == SuffixCR && c == '\n' && len(f.buf) == 0 {
			f.afterEnd = false
			continue
		}
		f.afterEnd = false
		// Keep one byte beyond MaxLen so that a CR belonging to a CRLF suffix fits.
		if len(f.buf) <= f.cfg.MaxLen {
			f.buf = append(f.buf, c)
		} else {
			f.over++
		}
	}
	return out
}

// Flush is called when the line has been quiet for the inter-byte gap. With SuffixNone it
// ends the frame; otherwise an unfinished frame is rejected with ErrIncomplete (except, in
// CRLF mode, one ending in CR: the scanner sent CR alone).
func (f *Framer) Flush() []Frame {
	defer f.reset()
	f.afterEnd = false
	if f.Pending() == 0 {
		return nil
	}
	b := f.buf
	switch {
	case f.cfg.Suffix == SuffixNone:
	case f.cfg.Suffix == SuffixCRLF && f.over == 0 && b[len(b)-1] == '\r':
		b = b[:len(b)-1]
	default:
		return []Frame{{Len: f.Pending(), Err: fmt.Errorf("%w: %d bytes without the %s suffix", ErrIncomplete, f.Pending(), f.cfg.Suffix)}}
	}
	if fr, ok := f.finish(b); ok {
		return []Frame{fr}
	}
	return nil
}

func (f *Framer) reset() {
	f.buf = f.buf[:0]
	f.over = 0
}

// finish checks a complete frame; ok is false for an empty one.
func (f *Framer) finish(b []byte) (Frame, bool) {
	n := len(b) + f.over
	if n == 0 {
		return Frame{}, false
	}
	fr := Frame{Len: n}
	if n > f.cfg.MaxLen {
		fr.Err = fmt.Errorf("%w: %d bytes or more, the limit is %d", ErrTooLong, n, f.cfg.MaxLen)
		return fr, true
	}
	s := string(b)
	if p := f.cfg.Prefix; p != "" {
		if !strings.HasPrefix(s, p) {
			fr.Err = fmt.Errorf("%w: %d-byte frame does not start with the %d-byte prefix", ErrNoPrefix, n, len(p))
			return fr, true
		}
		s = s[len(p):]
	}
	if len(s) >= 3 && s[0] == ']' && isAIMChar(s[1]) && isAIMChar(s[2]) {
		fr.AIM, s = s[:3], s[3:]
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F {
			fr.Err = fmt.Errorf("%w: 0x%02X at offset %d of %d", ErrControl, c, i, len(s))
			return fr, true
		}
	}
	if !utf8.ValidString(s) {
		fr.Err = fmt.Errorf("%w: %d bytes that are not UTF-8", ErrNoise, len(s))
		return fr, true
	}
	if len(s) < f.cfg.MinLen {
		fr.Err = fmt.Errorf("%w: %d bytes, the minimum is %d", ErrTooShort, len(s), f.cfg.MinLen)
		return fr, true
	}
	fr.Code = s
	return fr, true
}

func isAIMChar(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}
