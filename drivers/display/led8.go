package display

import (
	"fmt"
	"strings"
)

// LED8 is the command set of the 8-digit LED customer price displays (the "LED8N" class
// common at Chinese counters: eight 7-segment digits with decimal points and four lamps
// labelled 单价 price, 总计 total, 收款 collect and 找零 change):
//
//	ESC @                    initialize: settings to power-on values, display cleared
//	CLR (0x0C)               clear the digits
//	ESC Q A d1…dn CR         show a number: digits 0–9, '-' and '.', at most 8 digits; each
//	                         '.' lights the decimal point of the digit before it
//	ESC s n                  lamps: '0' all off, '1' price, '2' total, '3' collect, '4' change
//
// Reference: "LED8N Customer Display Users Manual" (scribd.com/doc/256223395), section 3,
// "EPSON ESC/POS commands instruction set list": ESC @ (1B 40) initialize, CLR (0C) clear,
// CAN (18) clear line, ESC Q A d1…dn CR (1B 51 41 … 0D) display data with 30H–39H, 2DH, 2EH,
// "d1…dn display no decimal point 1 <= n <= 8, … display the decimal point 1 <= n <= 15".
// That model also sets the four lamps with STX L d1 d2 d3 d4 ('0' dark, '1' bright for
// price, total, collect, change); the one-lamp ESC s n form is the one the other displays
// of the class take, and the one sent here. Open-source drivers of these displays agree: a
// customer-display controller for node (serialport, 2400 baud) sends ESC @, ESC Q A … CR and
// ESC s with n as the ASCII digit '0' (all off) to '3', beside STX L for the LED8N form; a
// JavaPOS LineDisplay for the Wintec CD110 sends ESC Q A … CR and ESC s with n as the binary
// 1–4 (price, total, collect, change). possim's emulation takes both forms of n.
const LED8 Protocol = "led8"

// LEDDigits is how many digits the LED display has.
const LEDDigits = 8

// Lamp is one of the LED display's indicator lamps.
type Lamp byte

const (
	LampOff     Lamp = '0' // all lamps off
	LampPrice   Lamp = '1' // 单价 unit price
	LampTotal   Lamp = '2' // 总计 total to pay
	LampCollect Lamp = '3' // 收款 amount received
	LampChange  Lamp = '4' // 找零 change given
)

func (l Lamp) String() string {
	switch l {
	case LampOff:
		return "off"
	case LampPrice:
		return "price"
	case LampTotal:
		return "total"
	case LampCollect:
		return "collect"
	case LampChange:
		return "change"
	}
	return fmt.Sprintf("Lamp(%q)", byte(l))
}

// LEDScreen is what the LED display shows: a number (digits, '-' and '.'; "" for blank) and
// one lamp.
type LEDScreen struct {
	Value string
	Lamp  Lamp
}

// LEDNumber fits a number for the display: it keeps the digits, one '-' in front and '.'
// marks (a leading '.' gets a 0 to light); a value with more than LEDDigits digits shows as eight dashes rather than a wrong
// number (the most significant digits would be cut). "" stays "".
func LEDNumber(s string) string {
	var b strings.Builder
	digits := 0
	for i, r := range strings.TrimSpace(s) {
		switch {
		case r >= '0' && r <= '9':
			digits++
			b.WriteRune(r)
		case r == '.' && digits > 0:
			b.WriteRune(r)
		case r == '.': // ".5": the point needs a digit to light
			b.WriteString("0.")
			digits++
		case r == '-' && i == 0:
			b.WriteRune(r)
		}
	}
	if digits > LEDDigits || (digits == LEDDigits && strings.HasPrefix(b.String(), "-")) {
		return strings.Repeat("-", LEDDigits)
	}
	if digits == 0 {
		return ""
	}
	return b.String()
}

// LEDFor maps a checkout screen onto the LED display (a pure decision): the screens with
// the amount to pay (total, scan your code, scan QR, processing, confirm) show it with the
// total lamp; an approved payment shows the amount with the collect lamp; a screen whose
// first line says CHANGE shows it with the change lamp; any other screen (declined,
// canceled, idle, messages) clears the digits and the lamps. The amount is the last
// number on the second line (falling back to the first).
func LEDFor(s Screen) LEDScreen {
	head := strings.ToUpper(strings.TrimSpace(s[0]))
	lamp := LampOff
	switch {
	case strings.HasPrefix(head, "APPROVED"):
		lamp = LampCollect
	case strings.HasPrefix(head, "CHANGE"):
		lamp = LampChange
	case head == "TOTAL", strings.HasPrefix(head, "SCAN"), strings.HasPrefix(head, "PROCESSING"), strings.HasPrefix(head, "CONFIRM"):
		lamp = LampTotal
	case strings.HasPrefix(head, "PRICE"):
		lamp = LampPrice
	}
	if lamp == LampOff {
		return LEDScreen{Lamp: LampOff}
	}
	v := lastNumber(s[1])
	if v == "" {
		v = lastNumber(s[0])
	}
	if v == "" {
		return LEDScreen{Lamp: LampOff}
	}
	return LEDScreen{Value: LEDNumber(v), Lamp: lamp}
}

// lastNumber returns the last run of digits (with '.', ',' and a leading '-') in s, the
// thousands separators dropped.
func lastNumber(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return !(r >= '0' && r <= '9' || r == '.' || r == ',' || r == '-')
	})
	for i := len(fields) - 1; i >= 0; i-- {
		f := strings.ReplaceAll(fields[i], ",", "")
		if strings.ContainsAny(f, "0123456789") {
			return f
		}
	}
	return ""
}

// LEDCommand returns the bytes that show s: clear, the number (if any), the lamp.
func LEDCommand(s LEDScreen) []byte {
	b := []byte{clr}
	if v := LEDNumber(s.Value); v != "" {
		b = append(b, esc, 'Q', 'A')
		b = append(b, v...)
		b = append(b, cr)
	}
	lamp := s.Lamp
	if lamp < LampOff || lamp > LampChange {
		lamp = LampOff
	}
	return append(b, esc, 's', byte(lamp))
}
