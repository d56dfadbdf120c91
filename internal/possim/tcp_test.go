package possim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// startTCPSim runs a simulator with a TCP printer and the control interface.
func startTCPSim(t *testing.T) (*Sim, string) {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.Printer.IdleEnd = 100 * time.Millisecond
	if s.TCPPrinter, err = NewTCPPrinter(s.Printer, "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { s.Control(ctx, "", ready); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return s, "http://" + <-ready
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestTCPPrinter_ControlAPI(t *testing.T) {
	s, ctl := startTCPSim(t)
	var st struct {
		Addr    string `json:"addr"`
		Up      bool   `json:"up"`
		Stalled bool   `json:"stalled"`
	}
	getJSON(t, ctl+"/tcp-printer", &st)
	if st.Addr != s.TCPPrinter.Addr() || !st.Up || st.Stalled {
		t.Fatalf("GET /tcp-printer = %+v", st)
	}

	// A job and a status request through the socket.
	c, err := net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("\x1b@HELLO OVER TCP\n\x1dV\x00\x10\x04\x01")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil || b[0]&0x93 != 0x12 {
		t.Fatalf("DLE EOT 1 answer %#x, %v", b[0], err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := s.Printer.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.Text, "HELLO OVER TCP") || job.Cuts != 1 {
		t.Errorf("job: %q, %d cuts", job.Text, job.Cuts)
	}

	// Down: the connection ends, new ones are refused; up: served again.
	if code, body := post(t, ctl+"/tcp-printer/down", ""); code != 200 {
		t.Fatalf("down: %d %s", code, body)
	}
	if _, err := c.Read(b[:]); err == nil {
		t.Error("the connection still reads after the printer went away")
	}
	c.Close()
	if c, err := net.Dial("tcp", st.Addr); err == nil {
		c.Close()
		t.Fatal("a printer that went away took a connection")
	}
	if code, body := post(t, ctl+"/tcp-printer/up", ""); code != 200 {
		t.Fatalf("up: %d %s", code, body)
	}
	c, err = net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatalf("dial after up: %v", err)
	}
	c.Write([]byte{0x10, 0x04, 0x01})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(b[:]); err != nil {
		t.Fatalf("no status answer after up: %v", err)
	}
	c.Close()

	// Stalled: the connection is taken, nothing is read, writes block.
	if code, body := post(t, ctl+"/tcp-printer/stall", `{"on": true}`); code != 200 {
		t.Fatalf("stall: %d %s", code, body)
	}
	c, err = net.Dial("tcp", st.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
	_, err = c.Write(bytes.Repeat([]byte("x"), 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write of 64 MiB to a stalled printer = %v, want a timeout", err)
	}
	if code, _ := post(t, ctl+"/tcp-printer/bogus", ""); code != 404 {
		t.Errorf("unknown op: %d, want 404", code)
	}
}

func TestTCPPrinter_NoneConfigured(t *testing.T) {
	_, ctl := startSim(t)
	for _, path := range []string{"/tcp-printer/down", "/tcp-printer/up", "/tcp-printer/stall"} {
		if code, _ := post(t, ctl+path, ""); code != 404 {
			t.Errorf("%s without a tcp printer: %d, want 404", path, code)
		}
	}
}

func TestLEDDisplay(t *testing.T) {
	for _, tc := range []struct {
		in, value, lamp string
		unknown         int
	}{
		{"\x1b@\x0c\x1bQA12.50\r\x1bs2", "12.50", "total", 0},
		{"\x1bQA123456789\r\x1bs4", "23456789", "change", 0},
		{"\x1bQA5\r\x0c\x1bs3", "", "collect", 0},
		{"\x1bQA7\r\x1bs1\x1b@", "", "off", 0},
		{"\x1bQA1x2\r", "", "off", 3}, // x ends the number unshown; x, 2 and CR are unknown
		{"\x1bs9\x1bZ?", "", "off", 3},
	} {
		d := NewLEDDisplay()
		d.Write([]byte(tc.in))
		if got := d.Value(); got != tc.value {
			t.Errorf("%q: value %q, want %q", tc.in, got, tc.value)
		}
		if got := d.Lamp(); got != tc.lamp {
			t.Errorf("%q: lamp %q, want %q", tc.in, got, tc.lamp)
		}
		if got := d.Unknown(); got != tc.unknown {
			t.Errorf("%q: %d unknown, want %d", tc.in, got, tc.unknown)
		}
	}
}

func TestLEDDisplay_ControlAPI(t *testing.T) {
	s, ctl := startSim(t)
	f, err := os.OpenFile(s.Path(LEDName), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("\x1b@\x1bQA8.80\r\x1bs3")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.LED.Wait(ctx, func(v, l string) bool { return v == "8.80" && l == "collect" }); err != nil {
		t.Fatal(err)
	}
	var got struct{ Value, Lamp string }
	getJSON(t, ctl+"/led8", &got)
	if got.Value != "8.80" || got.Lamp != "collect" {
		t.Errorf("GET /led8 = %+v", got)
	}
}

// FuzzLEDDisplay: any bytes leave the display in a state it can show.
func FuzzLEDDisplay(f *testing.F) {
	f.Add([]byte("\x1b@\x0c\x1bQA12.50\r\x1bs2"))
	f.Add([]byte("\x1bQA-0.5\r\x1bs4\x18"))
	f.Add([]byte("\x1b\x1b\x1bQ"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewLEDDisplay()
		d.Write(data)
		v := d.Value()
		digits := 0
		for _, c := range v {
			switch {
			case c >= '0' && c <= '9':
				digits++
			case c == '.' || c == '-':
			default:
				t.Fatalf("value %q has %q", v, c)
			}
		}
		if digits > 8 {
			t.Fatalf("value %q has %d digits", v, digits)
		}
		switch d.Lamp() {
		case "off", "price", "total", "collect", "change":
		default:
			t.Fatalf("lamp %q", d.Lamp())
		}
	})
}
