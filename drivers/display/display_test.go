package display

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/serial"
	"golang.org/x/sys/unix"
)

func cny(minor int64) posagent.Amount {
	c, _ := posagent.LookupCurrency("CNY")
	return posagent.Amount{Minor: minor, Currency: c}
}

func TestFit(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Hello", "Hello"},
		{"  two   words \r\n", "two words"},
		{"最佳 Shop", "?? Shop"},
		{"exactly twenty chars", "exactly twenty chars"},
		{"insufficient funds in account", "insufficient funds.."},
		{"ThisIsAVeryLongWordWithoutSpaces", "ThisIsAVeryLongWor.."},
		{"bell\x07here", "bell here"},
	}
	for _, tt := range tests {
		if got := Fit(tt.in); got != tt.want || len(got) > Cols {
			t.Errorf("Fit(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestScreens(t *testing.T) {
	tests := []struct {
		name string
		got  Screen
		want Screen
	}{
		{"total", TotalScreen(cny(1250)), Screen{"TOTAL", "           CNY 12.50"}},
		{"scan", ScanScreen(cny(600)), Screen{"Scan your code", "Total       CNY 6.00"}},
		{"scan, big amount drops the label", ScanScreen(cny(123456789012)), Screen{"Scan your code", "   CNY 1234567890.12"}},
		{"scan, long amount shortens the label", ScanScreen(cny(1234567890)), Screen{"Scan your code", "Tot. CNY 12345678.90"}},
		{"approved", ApprovedScreen(cny(99)), Screen{"APPROVED", "Paid        CNY 0.99"}},
		{"approved, huge amount drops the currency", ApprovedScreen(cny(9999999999999999)), Screen{"APPROVED", "   99999999999999.99"}},
		{"declined short", DeclinedScreen("expired"), Screen{"DECLINED: expired", ""}},
		{"declined long", DeclinedScreen("insufficient funds in account"), Screen{"DECLINED", "insufficient funds.."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
			for _, l := range tt.got {
				if len(l) > Cols {
					t.Errorf("line %q is longer than %d", l, Cols)
				}
			}
		})
	}
}

func TestRow(t *testing.T) {
	tests := []struct{ label, value, want string }{
		{"Total", "CNY 12.50", "Total      CNY 12.50"},
		{"Grand total to pay", "CNY 12.50", "Grand tot. CNY 12.50"},
		{"Total", "CNY 123456789012.50", " CNY 123456789012.50"},
		{"Total", "123456789012345678901", "####################"},
	}
	for _, tt := range tests {
		if got := Row(tt.label, tt.value); got != tt.want || len(got) != Cols {
			t.Errorf("Row(%q, %q) = %q, want %q", tt.label, tt.value, got, tt.want)
		}
	}
}

func TestCommands(t *testing.T) {
	s := Screen{"A", "B"}
	pad := func(c string) string { return c + string(bytes.Repeat([]byte(" "), Cols-1)) }
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"cd5220 show", ShowCommand(CD5220, s), "\x1bQA" + pad("A") + "\r\x1bQB" + pad("B") + "\r"},
		{"epson show", ShowCommand(Epson, s), "\x1f$\x01\x01" + pad("A") + "\x1f$\x01\x02" + pad("B")},
		{"cd5220 init", InitCommand(CD5220), "\x1b@\x0c"},
		{"epson init", InitCommand(Epson), "\x1b@\x0c\x1f\x01\x1fC\x00"},
	}
	for _, tt := range tests {
		if string(tt.got) != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	for p, want := range map[Protocol]string{CD5220: "\x1b*\x03", Epson: "\x1fX\x03"} {
		if got, err := BrightnessCommand(p, 3); err != nil || string(got) != want {
			t.Errorf("%s brightness 3: %q, %v; want %q", p, got, err, want)
		}
		if _, err := BrightnessCommand(p, 5); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("%s brightness 5: %v, want ErrInvalidInput", p, err)
		}
	}
	if _, err := ParseProtocol("ibm"); !errors.Is(err, posagent.ErrInvalidInput) {
		t.Errorf("ParseProtocol(ibm): %v", err)
	}
}

// TestDisplay_Pty drives the display through a serial port on a real pty and checks the
// bytes that reach the device.
func TestDisplay_Pty(t *testing.T) {
	m0, s, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	// creack/pty leaves the master in blocking mode; put it in the poller for the deadline.
	fd, err := unix.Dup(int(m0.Fd()))
	m0.Close()
	if err != nil || unix.SetNonblock(fd, true) != nil {
		t.Fatal(err)
	}
	m := os.NewFile(uintptr(fd), "/dev/ptmx")
	defer m.Close()
	defer s.Close()
	port, err := serial.Open(context.Background(), serial.Locator{Path: s.Name()}, serial.Options{Baud: 115200})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	d, err := New(port, CD5220)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Init(); err != nil {
		t.Fatal(err)
	}
	if err := d.Show(TotalScreen(cny(1250))); err != nil {
		t.Fatal(err)
	}
	want := append(InitCommand(CD5220), ShowCommand(CD5220, TotalScreen(cny(1250)))...)
	got := make([]byte, 0, len(want))
	m.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	for len(got) < len(want) {
		n, err := m.Read(buf)
		if err != nil {
			t.Fatalf("device read %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("device got %q, want %q", got, want)
	}
}
