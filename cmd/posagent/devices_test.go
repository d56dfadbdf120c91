package main

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/posagent/posagent/internal/testio"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/internal/possim"
)

// startSim runs the device simulator for a test.
func startSim(t *testing.T) *possim.Sim {
	t.Helper()
	s, err := possim.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

func TestDisplayCommand(t *testing.T) {
	s := startSim(t)
	for _, proto := range []string{"cd5220", "epson"} {
		code, _, stderr := run(t, "", "display", "--port", s.Path(possim.DisplayName), "--protocol", proto,
			"Total", "Grand total to pay for everything today")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", proto, code, stderr)
		}
		want := [2]string{"Total", "Grand total to pay.."}
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := s.Display.Screen()
			if strings.TrimRight(got[0], " ") == want[0] && strings.TrimRight(got[1], " ") == want[1] {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: display shows %q, want %q", proto, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
		s.Display.Write([]byte{0x0C}) // clear for the next protocol
	}
}

func TestDisplayCommand_Errors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"display", "--port", "/nonexistent/display", "hi"}, 1, "device not found"},
		{[]string{"display", "hi"}, 2, "port"},
		{[]string{"display", "--port", "/dev/null", "--protocol", "vt100", "hi"}, 2, "protocol"},
		{[]string{"display", "--port", "/dev/null", "a", "b", "c"}, 2, "LINE1"},
		{[]string{"display", "--port", "12:34:56", "a"}, 2, "VID:PID"},
	}
	for _, tt := range tests {
		code, _, stderr := run(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
}

func TestScanCommand(t *testing.T) {
	s := startSim(t)
	// Sent before the command opens the port: the pty keeps them, as a USB adapter would.
	retry(t, func() error { return s.Scanner.Noise(24, scanner.SuffixCRLF) })
	retry(t, func() error {
		return s.Scanner.Scan("134567890123456789", possim.ScanOptions{Suffix: scanner.SuffixCRLF, AIM: "]Q1", Chunk: 4, Gap: 2 * time.Millisecond})
	})
	retry(t, func() error {
		return s.Scanner.Scan("https://qr.alipay.com/bax01234", possim.ScanOptions{Suffix: scanner.SuffixCRLF})
	})

	var out, errOut testio.Buffer
	code := NewMain(strings.NewReader(""), &out, &errOut).Run(context.Background(),
		[]string{"scan", "--port", s.Path(possim.ScannerName), "--suffix", "crlf", "--count", "2", "--timeout", "10s"})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(lines[1]), &second)
	if first["kind"] != "wallet-code" || first["scheme"] != "wechat-pay" || first["aim"] != "]Q1" || first["masked"] != "134567********6789" {
		t.Errorf("first code: %s", lines[0])
	}
	if strings.Contains(out.String(), "134567890123456789") {
		t.Error("the wallet payment code (a credential) is printed in clear")
	}
	if second["kind"] != "merchant-url" {
		t.Errorf("second code: %s", lines[1])
	}
	if !strings.Contains(errOut.String(), "input rejected") {
		t.Errorf("the noise was not reported on stderr: %q", errOut.String())
	}
}

// retry calls f until it succeeds (the simulator serves its devices soon after it starts).
func retry(t *testing.T, f func() error) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if err = f(); err == nil {
			return
		}
	}
	t.Fatal(err)
}

func TestScanCommand_Timeout(t *testing.T) {
	s := startSim(t)
	code, _, stderr := run(t, "", "scan", "--port", s.Path(possim.ScannerName), "--count", "1", "--timeout", "100ms")
	if code != 1 || !strings.Contains(stderr, "0 of 1 code(s)") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestPortsCommand(t *testing.T) {
	defer func(f func() ([]serial.PortInfo, error)) { listPorts = f }(listPorts)
	listPorts = func() ([]serial.PortInfo, error) {
		return []serial.PortInfo{
			{Name: "/dev/ttyACM0", IsUSB: true, VID: "0C2E", PID: "0B61", Serial: "17010B2E07", Manufacturer: "Honeywell", Product: "Imaging 1900",
				Driver: "cdc_acm", ByID: []string{"/dev/serial/by-id/usb-Honeywell_Imaging_1900_17010B2E07-if00"}},
			{Name: "/dev/ttyS0", Driver: "serial8250"},
		}, nil
	}
	code, out, stderr := run(t, "", "ports")
	if code != 0 || !strings.Contains(strings.Join(strings.Fields(out), " "), "/dev/ttyACM0 0c2e:0b61 17010B2E07 cdc_acm Honeywell Imaging 1900 /dev/serial/by-id/") {
		t.Errorf("ports: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run(t, "", "ports", "--json")
	var got []serial.PortInfo
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 2 || got[0].VID != "0C2E" || got[0].Driver != "cdc_acm" {
		t.Errorf("ports --json: exit %d, %v\n%s", code, err, out)
	}
	listPorts = func() ([]serial.PortInfo, error) { return nil, errors.New("boom") }
	if code, _, _ := run(t, "", "ports"); code != 1 {
		t.Errorf("failed listing: exit %d, want 1", code)
	}
	listPorts = func() ([]serial.PortInfo, error) { return nil, nil }
	if code, out, _ := run(t, "", "ports", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Errorf("no ports --json: exit %d, %q", code, out)
	}
}
