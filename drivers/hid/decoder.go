package hid

import (
	"errors"
	"fmt"
)

// Reasons a code typed by a keyboard-mode scanner is rejected, for errors.Is. Like the
// serial framer's, they never contain the code (it may be a payment credential).
var (
	ErrUnknownKey = errors.New("key outside the keyboard layout in code")
	ErrTooLong    = errors.New("code too long")
)

// DefaultMaxLen bounds a code: the longest payment payload (qr.MaxPayload is 512) with room.
const DefaultMaxLen = 600

// Typed is what the keyboard decoder made of one Enter: a code, or a rejection.
type Typed struct {
	Code string
	Err  error // ErrUnknownKey or ErrTooLong (wrapped with the count); Code is then ""
	Len  int   // characters typed
}

// Keyboard turns key events into the codes a scanner in keyboard mode types, in the US
// layout: shift (either) held gives the shifted character, caps lock (toggled on its key
// press) swaps the case of letters, Enter or keypad Enter ends a code. A key press is value
// 1; releases (0) matter only for shift; autorepeat (2) is ignored, as a scanner never
// holds a key and a repeat means a stuck key, not a character. A code with a key the layout
// does not have, or longer than MaxLen, is rejected whole at its Enter. Keyboard is a
// pure state machine: no I/O, no clock.
type Keyboard struct {
	// MaxLen bounds a code in characters; 0 means DefaultMaxLen.
	MaxLen int

	shift   [2]bool // left, right
	caps    bool
	buf     []byte
	n       int // characters typed, kept or not
	unknown int
}

// Reset forgets a half-typed code and the modifier state (after a reconnect).
func (k *Keyboard) Reset() {
	max := k.MaxLen
	*k = Keyboard{MaxLen: max}
}

// Feed takes one event and returns a Typed when it ended a code (ok true).
func (k *Keyboard) Feed(ev Event) (t Typed, ok bool) {
	if ev.Type != EvKey {
		return Typed{}, false
	}
	switch ev.Code {
	case KeyLeftShift, KeyRightShift:
		i := 0
		if ev.Code == KeyRightShift {
			i = 1
		}
		switch ev.Value {
		case KeyPressed:
			k.shift[i] = true
		case KeyReleased:
			k.shift[i] = false
		}
		return Typed{}, false
	}
	if ev.Value != KeyPressed {
		return Typed{}, false
	}
	switch {
	case ev.Code == KeyCapsLock:
		k.caps = !k.caps
		return Typed{}, false
	case ev.Code == KeyEnter || ev.Code == KeyKPEnter:
		if k.n == 0 { // a bare Enter ends nothing
			return Typed{}, false
		}
		return k.end(), true
	case ignoredKeys[ev.Code]:
		return Typed{}, false
	}
	maxLen := k.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	k.n++
	c, known := usChar(ev.Code, k.shift[0] || k.shift[1], k.caps)
	if !known {
		k.unknown++
		return Typed{}, false
	}
	if len(k.buf) < maxLen {
		k.buf = append(k.buf, c)
	}
	return Typed{}, false
}

// end finishes the code typed so far.
func (k *Keyboard) end() Typed {
	maxLen := k.MaxLen
	if maxLen <= 0 {
		maxLen = DefaultMaxLen
	}
	t := Typed{Len: k.n}
	switch {
	case k.unknown > 0:
		t.Err = fmt.Errorf("%w (%d of %d keys)", ErrUnknownKey, k.unknown, k.n)
	case k.n > maxLen:
		t.Err = fmt.Errorf("%w: %d characters, at most %d", ErrTooLong, k.n, maxLen)
	default:
		t.Code = string(k.buf)
	}
	clear(k.buf)
	k.buf, k.n, k.unknown = k.buf[:0], 0, 0
	return t
}
