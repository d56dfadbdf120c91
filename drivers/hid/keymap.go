package hid

// Key codes (linux/input-event-codes.h) with a meaning of their own.
const (
	KeyEnter      = 28
	KeyLeftCtrl   = 29
	KeyLeftShift  = 42
	KeyRightShift = 54
	KeyLeftAlt    = 56
	KeyCapsLock   = 58
	KeyNumLock    = 69
	KeyKPEnter    = 96
	KeyRightCtrl  = 97
	KeyRightAlt   = 100
	KeyLeftMeta   = 125
	KeyRightMeta  = 126
)

// usKeys is the US layout: key code -> the character without and with shift. Letters are
// lower case here; caps lock and shift decide their case.
var usKeys = map[uint16][2]byte{
	2: {'1', '!'}, 3: {'2', '@'}, 4: {'3', '#'}, 5: {'4', '$'}, 6: {'5', '%'},
	7: {'6', '^'}, 8: {'7', '&'}, 9: {'8', '*'}, 10: {'9', '('}, 11: {'0', ')'},
	12: {'-', '_'}, 13: {'=', '+'},
	16: {'q', 'Q'}, 17: {'w', 'W'}, 18: {'e', 'E'}, 19: {'r', 'R'}, 20: {'t', 'T'},
	21: {'y', 'Y'}, 22: {'u', 'U'}, 23: {'i', 'I'}, 24: {'o', 'O'}, 25: {'p', 'P'},
	26: {'[', '{'}, 27: {']', '}'},
	30: {'a', 'A'}, 31: {'s', 'S'}, 32: {'d', 'D'}, 33: {'f', 'F'}, 34: {'g', 'G'},
	35: {'h', 'H'}, 36: {'j', 'J'}, 37: {'k', 'K'}, 38: {'l', 'L'},
	39: {';', ':'}, 40: {'\'', '"'}, 41: {'`', '~'}, 43: {'\\', '|'},
	44: {'z', 'Z'}, 45: {'x', 'X'}, 46: {'c', 'C'}, 47: {'v', 'V'}, 48: {'b', 'B'},
	49: {'n', 'N'}, 50: {'m', 'M'},
	51: {',', '<'}, 52: {'.', '>'}, 53: {'/', '?'},
	57: {' ', ' '},
	// Keypad (scanners that send digits as keypad keys, num lock on).
	55: {'*', '*'}, 71: {'7', '7'}, 72: {'8', '8'}, 73: {'9', '9'}, 74: {'-', '-'},
	75: {'4', '4'}, 76: {'5', '5'}, 77: {'6', '6'}, 78: {'+', '+'},
	79: {'1', '1'}, 80: {'2', '2'}, 81: {'3', '3'}, 82: {'0', '0'}, 83: {'.', '.'},
	98: {'/', '/'},
}

// ignoredKeys are pressed around characters without being one: modifiers the US layout
// gives no meaning, and num lock.
var ignoredKeys = map[uint16]bool{
	KeyLeftCtrl: true, KeyRightCtrl: true, KeyLeftAlt: true, KeyRightAlt: true,
	KeyLeftMeta: true, KeyRightMeta: true, KeyNumLock: true,
}

// usChar returns the character key gives with shift (and caps lock for letters), and
// whether the key is in the layout.
func usChar(key uint16, shift, caps bool) (byte, bool) {
	c, ok := usKeys[key]
	if !ok {
		return 0, false
	}
	up := shift
	if c[0] >= 'a' && c[0] <= 'z' && caps {
		up = !up
	}
	if up {
		return c[1], true
	}
	return c[0], true
}
