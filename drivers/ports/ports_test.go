package ports

import (
	"context"
	"errors"
	"testing"

	"github.com/posagent/posagent"
)

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Kind
	}{
		{"/dev/ttyUSB0", Serial}, {"0c2e:0b61", Serial}, {"usb-Honeywell-if00", Serial},
		{"tcp:10.0.0.5", TCP}, {" tcp:printer:9100", TCP},
		{"usblp:/dev/usb/lp0", USBLP}, {"usblp:0fe6:811e", USBLP},
		{"hid:/dev/input/event3", HID}, {"hid:name=Zebra", HID},
	} {
		if got := KindOf(tc.in); got != tc.want {
			t.Errorf("KindOf(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		role, port string
		ok         bool
	}{
		{"printer", "/dev/ttyUSB0", true}, {"printer", "tcp:10.0.0.5", true}, {"printer", "usblp:lp0", true},
		{"printer", "hid:event3", false}, {"printer", "tcp:", false}, {"printer", "usblp:1:2:3", false},
		{"scanner", "hid:0c2e:0200", true}, {"scanner", "/dev/ttyACM0", true},
		{"scanner", "tcp:10.0.0.5", false}, {"scanner", "usblp:lp0", false}, {"scanner", "hid:nope", false},
		{"display", "tcp:10.0.0.9:4001", true}, {"display", "usblp:lp0", false}, {"display", "hid:event1", false},
	} {
		err := Validate(tc.role, tc.port)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%s, %q) = %v, want ok %v", tc.role, tc.port, err, tc.ok)
		}
		if err != nil && !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("Validate(%s, %q) = %v, not an invalid-input error", tc.role, tc.port, err)
		}
	}
}

func TestPrinterPacing(t *testing.T) {
	if rate, chunk := PrinterPacing("/dev/ttyUSB0", 115200); rate != 115200 || chunk != 0 {
		t.Errorf("serial pacing = %d, %d; want the baud rate and the driver's chunk", rate, chunk)
	}
	for _, port := range []string{"tcp:10.0.0.5", "usblp:/dev/usb/lp0"} {
		if rate, chunk := PrinterPacing(port, 9600); rate < 10_000_000 || chunk < 1024 {
			t.Errorf("%s pacing = %d, %d; want no pacing to speak of", port, rate, chunk)
		}
	}
}

func TestOpen_WrongRole(t *testing.T) {
	if _, err := Open(context.Background(), "hid:/dev/input/event0", Options{}); !errors.Is(err, posagent.ErrInvalidInput) {
		t.Errorf("Open(hid:) = %v, want an invalid-input error", err)
	}
	if _, err := OpenScanner(context.Background(), "tcp:127.0.0.1:1", Options{}); !errors.Is(err, posagent.ErrInvalidInput) {
		t.Errorf("OpenScanner(tcp:) = %v, want an invalid-input error", err)
	}
}
