// Package display drives a 2×20 customer display (pole display) in the CD5220 or the Epson
// ESC/POS customer-display command set, or an 8-digit LED price display (LED8), and lays out the checkout screens ("total", "scan
// your code", "approved", "declined: reason") so that amounts stay visible when text is too
// long.
package display

import (
	"fmt"
	"io"
	"strings"

	"github.com/posagent/posagent"
)

// Size of the display.
const (
	Cols = 20
	Rows = 2
)

// Protocol is a customer-display command set.
type Protocol string

const (
	// CD5220 is the command set of CD5220-compatible displays (most generic pole
	// displays): ESC Q A / ESC Q B write the upper / lower line, ESC * n sets brightness.
	CD5220 Protocol = "cd5220"
	// Epson is the ESC/POS customer-display command set (Epson DM-D and compatibles):
	// US $ x y moves the cursor, US X n sets brightness, US 1 selects overwrite mode.
	Epson Protocol = "epson"
)

// ParseProtocol reads "cd5220", "epson" or "led8" (any case).
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(strings.ToLower(strings.TrimSpace(s))); p {
	case CD5220, Epson, LED8:
		return p, nil
	}
	return "", posagent.Invalidf("display protocol %q: want cd5220, epson or led8", s)
}

const (
	esc = 0x1B
	us  = 0x1F
	clr = 0x0C
	cr  = 0x0D
)

// Screen is what the display shows: two lines of at most Cols characters each.
type Screen [Rows]string

// Display writes screens to a customer display.
type Display struct {
	w io.Writer
	p Protocol
}

// New returns a Display that writes protocol p's commands to w.
func New(w io.Writer, p Protocol) (*Display, error) {
	if p != CD5220 && p != Epson && p != LED8 {
		return nil, posagent.Invalidf("display protocol %q: want cd5220, epson or led8", p)
	}
	return &Display{w: w, p: p}, nil
}

func (d *Display) write(b []byte) error {
	if _, err := d.w.Write(b); err != nil {
		return fmt.Errorf("display: %w", err)
	}
	return nil
}

// Init resets the display (ESC @), clears it and, for Epson, selects overwrite mode and
// hides the cursor.
func (d *Display) Init() error { return d.write(InitCommand(d.p)) }

// Clear clears the display.
func (d *Display) Clear() error { return d.write([]byte{clr}) }

// Show writes both lines, each fitted to Cols characters and padded, so that nothing of
// the previous screen remains. On an LED8 display it shows what LEDFor makes of s.
func (d *Display) Show(s Screen) error { return d.write(ShowCommand(d.p, s)) }

// ShowLED shows a number and a lamp on an LED8 display; other displays get the number
// on the second line under the lamp's name.
func (d *Display) ShowLED(s LEDScreen) error {
	if d.p == LED8 {
		return d.write(LEDCommand(s))
	}
	return d.Show(Screen{strings.ToUpper(s.Lamp.String()), Row("", s.Value)})
}

// Brightness sets the brightness level, 1 (dimmest) to 4.
func (d *Display) Brightness(level int) error {
	b, err := BrightnessCommand(d.p, level)
	if err != nil {
		return err
	}
	return d.write(b)
}

// InitCommand returns the bytes Init sends (for LED8: ESC @, CLR, lamps off).
func InitCommand(p Protocol) []byte {
	if p == LED8 {
		return []byte{esc, '@', clr, esc, 's', byte(LampOff)}
	}
	if p == Epson {
		return []byte{esc, '@', clr, us, 0x01, us, 'C', 0}
	}
	return []byte{esc, '@', clr}
}

// ShowCommand returns the bytes that show s.
func ShowCommand(p Protocol, s Screen) []byte {
	if p == LED8 {
		return LEDCommand(LEDFor(s))
	}
	var b []byte
	for row, line := range s {
		text := pad(Fit(line))
		if p == Epson {
			b = append(b, us, '$', 1, byte(row+1))
			b = append(b, text...)
		} else {
			b = append(b, esc, 'Q', 'A'+byte(row))
			b = append(b, text...)
			b = append(b, cr)
		}
	}
	return b
}

// BrightnessCommand returns the bytes that set brightness level 1–4.
func BrightnessCommand(p Protocol, level int) ([]byte, error) {
	if level < 1 || level > 4 {
		return nil, posagent.Invalidf("display brightness %d: want 1 to 4", level)
	}
	switch p {
	case Epson:
		return []byte{us, 'X', byte(level)}, nil
	case LED8:
		return nil, posagent.Invalidf("display brightness: the led8 display has no brightness command")
	}
	return []byte{esc, '*', byte(level)}, nil
}

func pad(s string) string { return s + strings.Repeat(" ", Cols-len(s)) }
