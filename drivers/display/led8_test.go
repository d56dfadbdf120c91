package display

import (
	"bytes"
	"testing"
)

func TestLEDNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"12.50", "12.50"},
		{" 0.01 ", "0.01"},
		{"-3.20", "-3.20"},
		{"99999999", "99999999"},
		{"123456789", "--------"}, // nine digits: never a wrong number
		{"-12345678", "--------"},
		{"1234567.89", "--------"},
		{"123456.78", "123456.78"},
		{".5", "0.5"}, // a point needs a digit to light
		{"-.5", "-0.5"},
		{"", ""},
		{"abc", ""},
	} {
		if got := LEDNumber(tc.in); got != tc.want {
			t.Errorf("LEDNumber(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestLEDFor maps the checkout's screens (as device/session.go makes them) onto the LED
// display.
func TestLEDFor(t *testing.T) {
	for _, tc := range []struct {
		s    Screen
		want LEDScreen
	}{
		{TotalScreen(cny(1250)), LEDScreen{"12.50", LampTotal}},
		{ScanScreen(cny(123450)), LEDScreen{"1234.50", LampTotal}},
		{Screen{"SCAN QR TO PAY", Row("TOTAL", FormatAmount(cny(880)))}, LEDScreen{"8.80", LampTotal}},
		{Screen{"PROCESSING...", Row("TOTAL", FormatAmount(cny(880)))}, LEDScreen{"8.80", LampTotal}},
		{Screen{"CONFIRM ON YOUR PHONE", Row("TOTAL", FormatAmount(cny(880)))}, LEDScreen{"8.80", LampTotal}},
		{ApprovedScreen(cny(1250)), LEDScreen{"12.50", LampCollect}},
		{Screen{"APPROVED (OFFLINE)", Row("", FormatAmount(cny(99)))}, LEDScreen{"0.99", LampCollect}},
		{Screen{"CHANGE", "7.50"}, LEDScreen{"7.50", LampChange}},
		{Screen{"PRICE 3.20", ""}, LEDScreen{"3.20", LampPrice}},
		{DeclinedScreen("insufficient funds"), LEDScreen{Lamp: LampOff}},
		{Screen{"CANCELED", ""}, LEDScreen{Lamp: LampOff}},
		{Screen{"CHECKING PAYMENT", "PLEASE WAIT"}, LEDScreen{Lamp: LampOff}},
		{Screen{"TOTAL", "no amount"}, LEDScreen{Lamp: LampOff}},
		{Screen{}, LEDScreen{Lamp: LampOff}},
	} {
		if got := LEDFor(tc.s); got != tc.want {
			t.Errorf("LEDFor(%q) = %+v, want %+v", tc.s, got, tc.want)
		}
	}
}

func TestLEDCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"init", InitCommand(LED8), []byte("\x1b@\x0c\x1bs0")},
		{"total", LEDCommand(LEDScreen{"12.50", LampTotal}), []byte("\x0c\x1bQA12.50\r\x1bs2")},
		{"collect", LEDCommand(LEDScreen{"12.50", LampCollect}), []byte("\x0c\x1bQA12.50\r\x1bs3")},
		{"change", LEDCommand(LEDScreen{"7.50", LampChange}), []byte("\x0c\x1bQA7.50\r\x1bs4")},
		{"price", LEDCommand(LEDScreen{"3.20", LampPrice}), []byte("\x0c\x1bQA3.20\r\x1bs1")},
		{"blank", LEDCommand(LEDScreen{Lamp: LampOff}), []byte("\x0c\x1bs0")},
		{"bad lamp", LEDCommand(LEDScreen{"1", Lamp('9')}), []byte("\x0c\x1bQA1\r\x1bs0")},
		{"show screen", ShowCommand(LED8, ApprovedScreen(cny(500))), []byte("\x0c\x1bQA5.00\r\x1bs3")},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, tc.want)
		}
	}
	if _, err := BrightnessCommand(LED8, 2); err == nil {
		t.Error("BrightnessCommand(led8) succeeded: the LED display has no brightness command")
	}
	if p, err := ParseProtocol(" LED8 "); err != nil || p != LED8 {
		t.Errorf("ParseProtocol(LED8) = %q, %v", p, err)
	}
	var buf bytes.Buffer
	d, err := New(&buf, LED8)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.ShowLED(LEDScreen{"42", LampChange}); err != nil || buf.String() != "\x0c\x1bQA42\r\x1bs4" {
		t.Errorf("ShowLED wrote %q, %v", buf.String(), err)
	}
}
