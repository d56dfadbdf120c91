package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

// TestMain_PrintTCP prints with --port tcp:HOST:PORT on possim's network printer, then
// reports a printer that went away, and one that takes the connection but never reads.
func TestMain_PrintTCP(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	code, out, stderr := run(t, printReceipt, "print", "--port", "tcp:"+sim.Addr(), "--profile", "generic-80", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got printResult
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.Printed || got.Status != "ready" {
		t.Fatalf("output %q (%v)", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	job, err := sim.Printer.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.Text, "矿泉水 Water 550ml") || len(job.QR) != 1 {
		t.Errorf("printed:\n%s\nQR %q", job.Text, job.QR)
	}

	sim.Stall(true)
	code, _, stderr = run(t, printReceipt, "print", "--port", "tcp:"+sim.Addr(), "--write-timeout", "200ms", "-")
	if code != 1 || !strings.Contains(stderr, "hint:") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("stalled printer: exit %d, stderr %q", code, stderr)
	}

	sim.GoAway()
	code, _, stderr = run(t, printReceipt, "print", "--port", "tcp:"+sim.Addr(), "-")
	if code != 1 || !strings.Contains(stderr, "device not found") || !strings.Contains(stderr, "hint:") {
		t.Errorf("printer away: exit %d, stderr %q", code, stderr)
	}
	for _, port := range []string{"tcp:", "tcp:host:99999", "usblp:12:34:56", "hid:/dev/input/event0"} {
		if code, _, stderr := run(t, printReceipt, "print", "--port", port, "-"); code != 2 {
			t.Errorf("--port %s: exit %d, want 2 (%q)", port, code, stderr)
		}
	}
}

// TestMain_PrintUSBLP prints with --port usblp:PATH: the simulated printer's pty stands in
// for /dev/usb/lp0 (written and read back on the same descriptor).
func TestMain_PrintUSBLP(t *testing.T) {
	sim, dev := possimtest.Printer(t, 384)
	code, out, stderr := run(t, printReceipt, "print", "--port", "usblp:"+dev, "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got printResult
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.Printed {
		t.Fatalf("output %q (%v)", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if job, err := sim.WaitJob(ctx, 1); err != nil || !strings.Contains(job.Text, "WeChat Pay") {
		t.Fatalf("job: %+v, %v", job, err)
	}
	code, _, stderr = run(t, printReceipt, "print", "--port", "usblp:/dev/usb/lp97", "-")
	if code != 1 || !strings.Contains(stderr, "device not found") {
		t.Errorf("absent usb printer: exit %d, stderr %q", code, stderr)
	}
}

// TestDisplayCommand_LED8 shows the checkout's screens on possim's LED price display.
func TestDisplayCommand_LED8(t *testing.T) {
	s := startSim(t)
	for _, tc := range []struct {
		args        []string
		value, lamp string
	}{
		{[]string{"TOTAL", "CNY 1,234.50"}, "1234.50", "total"},
		{[]string{"APPROVED", "Paid CNY 12.50"}, "12.50", "collect"},
		{[]string{"CHANGE", "7.50"}, "7.50", "change"},
		{[]string{"PRICE 3.20"}, "3.20", "price"},
		{[]string{"DECLINED: limit", "CNY 3.00"}, "", "off"},
	} {
		args := append([]string{"display", "--port", s.Path(possim.LEDName), "--protocol", "led8"}, tc.args...)
		if code, _, stderr := run(t, "", args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, stderr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.LED.Wait(ctx, func(v, l string) bool { return v == tc.value && l == tc.lamp })
		cancel()
		if err != nil {
			t.Errorf("%v: %v; want %q with lamp %s", tc.args, err, tc.value, tc.lamp)
		}
	}
	if n := s.LED.Unknown(); n != 0 {
		t.Errorf("the LED display did not understand %d bytes", n)
	}
	if code, _, stderr := run(t, "", "display", "--port", s.Path(possim.LEDName), "--protocol", "led8", "--brightness", "2", "X"); code != 2 {
		t.Errorf("--brightness on led8: exit %d, want 2 (%q)", code, stderr)
	}
}

func TestScanCommand_HIDErrors(t *testing.T) {
	code, _, stderr := run(t, "", "scan", "--port", "hid:name=no such scanner here", "--count", "1")
	if code != 1 || !strings.Contains(stderr, "device not found") || !strings.Contains(stderr, "hint:") {
		t.Errorf("absent hid scanner: exit %d, stderr %q", code, stderr)
	}
	for _, port := range []string{"hid:", "hid:bogus", "tcp:10.0.0.1"} {
		if code, _, stderr := run(t, "", "scan", "--port", port); code != 2 {
			t.Errorf("scan --port %s: exit %d, want 2 (%q)", port, code, stderr)
		}
	}
}
