package possim

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// LEDName is the link name of the simulated 8-digit LED price display.
const LEDName = "led8"

// LEDDisplay simulates an 8-digit LED customer price display (protocol led8 in
// drivers/display): ESC @ initializes (clears, lamps off), CLR (0x0C) clears the digits,
// ESC Q A d1…dn CR shows a number (digits, '-', '.'; more than 8 digits keeps the last 8,
// as the display shifts them in), ESC s n lights lamp n ('0' none, '1' price, '2' total,
// '3' collect, '4' change). Other bytes are counted as unknown and skipped.
type LEDDisplay struct {
	mu      sync.Mutex
	cond    *sync.Cond
	value   string
	lamp    byte
	seq     []byte // an escape sequence being read
	number  []byte // ESC Q A: digits until CR
	inNum   bool
	unknown int
}

// NewLEDDisplay returns a blank display with the lamps off.
func NewLEDDisplay() *LEDDisplay {
	d := &LEDDisplay{lamp: '0'}
	d.cond = sync.NewCond(&d.mu)
	return d
}

// Wait waits until ok(value, lamp) holds for what the display shows, or ctx ends.
func (d *LEDDisplay) Wait(ctx context.Context, ok func(value, lamp string) bool) error {
	stop := context.AfterFunc(ctx, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.cond.Broadcast()
	})
	defer stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for !ok(d.value, lampNames[d.lamp-'0']) {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("wait for the led display (it shows %q, lamp %s): %w", d.value, lampNames[d.lamp-'0'], err)
		}
		d.cond.Wait()
	}
	return nil
}

var lampNames = [...]string{"off", "price", "total", "collect", "change"}

// Serve shows what the host sends on rw until ctx is done or rw fails.
func (d *LEDDisplay) Serve(ctx context.Context, rw io.ReadWriter) error {
	return readLoop(ctx, rw, func(b []byte) { d.Write(b) })
}

// Write interprets the commands; it never fails.
func (d *LEDDisplay) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range b {
		d.feed(c)
	}
	d.cond.Broadcast()
	return len(b), nil
}

func (d *LEDDisplay) feed(c byte) {
	if d.inNum {
		switch {
		case c == '\r':
			d.inNum = false
			d.value = lastDigits(string(d.number), 8)
			d.number = d.number[:0]
		case c >= '0' && c <= '9', c == '.', c == '-':
			if len(d.number) < 64 {
				d.number = append(d.number, c)
			}
		default:
			d.inNum = false
			d.number = d.number[:0]
			d.unknown++
		}
		return
	}
	if len(d.seq) > 0 {
		d.seq = append(d.seq, c)
		switch {
		case len(d.seq) == 2 && c == '@':
			d.value, d.lamp, d.seq = "", '0', d.seq[:0]
		case len(d.seq) == 2 && (c == 'Q' || c == 's'):
		case len(d.seq) == 3 && d.seq[1] == 'Q' && c == 'A':
			d.inNum, d.seq = true, d.seq[:0]
		case len(d.seq) == 3 && d.seq[1] == 's' && c >= '0' && c <= '4':
			d.lamp, d.seq = c, d.seq[:0]
		case len(d.seq) == 3 && d.seq[1] == 's' && c <= 4: // some models take n as a binary 0–4
			d.lamp, d.seq = '0'+c, d.seq[:0]
		default:
			d.unknown++
			d.seq = d.seq[:0]
		}
		return
	}
	switch c {
	case 0x1B:
		d.seq = append(d.seq, c)
	case 0x0C, 0x18: // CLR, CAN
		d.value = ""
	default:
		d.unknown++
	}
}

// lastDigits keeps the last n digits of s with the marks among them.
func lastDigits(s string, n int) string {
	digits := 0
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
			if digits > n {
				return s[i+1:]
			}
		}
	}
	return s
}

// Value returns the number shown ("" when blank).
func (d *LEDDisplay) Value() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.value
}

// Lamp returns the lamp lit: "off", "price", "total", "collect" or "change".
func (d *LEDDisplay) Lamp() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return lampNames[d.lamp-'0']
}

// Unknown counts the bytes it did not understand.
func (d *LEDDisplay) Unknown() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.unknown
}

// ledRoutes adds GET /led8: {"value", "lamp", "unknown"}.
func (s *Sim) ledRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /led8", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, map[string]any{"value": s.LED.Value(), "lamp": s.LED.Lamp(), "unknown": s.LED.Unknown()})
	})
}
