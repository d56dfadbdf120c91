package possim

import (
	"context"
	"io"
	"strings"
	"sync"
)

// Display simulates a 2×20 customer display that understands both the CD5220 and the
// Epson ESC/POS customer-display command sets (the commonly used subset; other
// sequences are skipped), and keeps the screen.
type Display struct {
	mu         sync.Mutex
	screen     [2][20]byte
	x, y       int
	brightness int
	seq        []byte // an escape sequence being read
	lineMode   int    // ESC Q A/B: writing line lineMode-1 until CR; 0: off
	line       []byte
	unknown    int
}

// NewDisplay returns a blank display at full brightness.
func NewDisplay() *Display {
	d := &Display{brightness: 4}
	d.clear()
	return d
}

// Serve shows what the host sends on rw until ctx is done or rw fails.
func (d *Display) Serve(ctx context.Context, rw io.ReadWriter) error {
	return readLoop(ctx, rw, func(b []byte) { d.Write(b) })
}

// Write interprets display commands; it never fails.
func (d *Display) Write(b []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range b {
		d.feed(c)
	}
	return len(b), nil
}

// Screen returns the two lines as shown, 20 characters each.
func (d *Display) Screen() [2]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return [2]string{string(d.screen[0][:]), string(d.screen[1][:])}
}

// Brightness returns the brightness level, 1–4.
func (d *Display) Brightness() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.brightness
}

// Text draws the screen in a box, for people.
func (d *Display) Text() string {
	s := d.Screen()
	bar := "+" + strings.Repeat("-", 20) + "+"
	return bar + "\n|" + s[0] + "|\n|" + s[1] + "|\n" + bar + "\n"
}

func (d *Display) clear() {
	for y := range d.screen {
		for x := range d.screen[y] {
			d.screen[y][x] = ' '
		}
	}
	d.x, d.y = 0, 0
}

func (d *Display) put(c byte) {
	if d.x >= 20 { // overwrite mode: past the end of a line, on to the start of the next
		d.x, d.y = 0, (d.y+1)%2
	}
	d.screen[d.y][d.x] = c
	d.x++
}

// seqLen returns the length of a complete escape sequence starting with seq (0 while it
// is incomplete).
func seqLen(seq []byte) int {
	if len(seq) < 2 {
		return 0
	}
	if seq[0] == 0x1B {
		switch seq[1] {
		case 'l': // ESC l x y: cursor to x, y
			return 4
		case '*', '=', '_', 'c', 'f', 'R', 't', '%', '&': // one argument
			return 3
		case '[': // ESC [ H, ESC [ L, ESC [ R, ESC [ K …
			return 3
		case 'Q': // ESC Q A/B/C/D: line or scroll message, then text until CR
			return 3
		}
		return 2
	}
	switch seq[1] { // US
	case '$': // US $ x y
		return 4
	case 'X', 'C', 'E', 'r', 'c', 'T', 'v': // one argument
		return 3
	}
	return 2
}

func (d *Display) feed(c byte) {
	if d.lineMode > 0 {
		if c == 0x0D || len(d.line) >= 40 {
			row := (d.lineMode - 1) % 2
			for x := range d.screen[row] {
				d.screen[row][x] = ' '
			}
			copy(d.screen[row][:], d.line)
			d.lineMode, d.line = 0, d.line[:0]
			return
		}
		d.line = append(d.line, c)
		return
	}
	if len(d.seq) > 0 {
		d.seq = append(d.seq, c)
		n := seqLen(d.seq)
		if n == 0 || len(d.seq) < n {
			return
		}
		d.command(d.seq)
		d.seq = d.seq[:0]
		return
	}
	switch {
	case c == 0x1B || c == 0x1F:
		d.seq = append(d.seq, c)
	case c == 0x0C: // CLR
		d.clear()
	case c == 0x0B: // HOM
		d.x, d.y = 0, 0
	case c == 0x0D:
		d.x = 0
	case c == 0x0A:
		d.y = min(d.y+1, 1)
	case c == 0x08:
		d.x = max(d.x-1, 0)
	case c == 0x09:
		d.x = min(d.x+1, 19)
	case c == 0x18: // CAN: clear the cursor line
		for x := range d.screen[d.y] {
			d.screen[d.y][x] = ' '
		}
		d.x = 0
	case c >= 0x20:
		d.put(c)
	default:
		d.unknown++
	}
}

func (d *Display) command(s []byte) {
	if s[0] == 0x1B {
		switch s[1] {
		case '@':
			d.clear()
			d.brightness = 4
		case '*':
			if s[2] >= 1 && s[2] <= 4 {
				d.brightness = int(s[2])
			}
		case 'l':
			d.x, d.y = clamp(int(s[2])-1, 19), clamp(int(s[3])-1, 1)
		case '[':
			if s[2] == 'H' {
				d.x, d.y = 0, 0
			}
		case 'Q':
			switch s[2] {
			case 'A', 'D': // upper line (D: scrolling message, shown still)
				d.lineMode = 1
			case 'B':
				d.lineMode = 2
			}
		}
		return
	}
	switch s[1] {
	case '$':
		d.x, d.y = clamp(int(s[2])-1, 19), clamp(int(s[3])-1, 1)
	case 'X':
		if s[2] >= 1 && s[2] <= 4 {
			d.brightness = int(s[2])
		}
	case 'B': // US B: cursor to the bottom line
		d.y = 1
	}
}

func clamp(v, hi int) int { return min(max(v, 0), hi) }
