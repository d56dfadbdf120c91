package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

// simConfig writes an agent config whose devices are the simulator's.
func simConfig(t *testing.T, s *possim.Sim) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "posagent.yaml")
	text := fmt.Sprintf(`terminal: T1
state_dir: %s
api: {token: devtest-token-0123456789}
acquirer: {url: http://127.0.0.1:1}
devices:
  printer: {port: %s, baud: 115200, profile: generic-80}
  display: {port: %s, protocol: epson}
  scanner: {port: %s, suffix: crlf}
`, t.TempDir(), s.Path(possim.PrinterName), s.Path(possim.DisplayName), s.Path(possim.ScannerName))
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTestPrint(t *testing.T) {
	sim, dev := possimtest.Printer(t, 384)
	code, out, stderr := run(t, "", "test", "print", "--port", dev, "--baud", "115200", "--profile", "generic-58")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := sim.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(job.Lines, "\n")
	for _, want := range []string{"POSAGENT TEST PAGE", "中文测试", rulerLine(32), "generic-58"} {
		if !strings.Contains(text, want) {
			t.Errorf("test page lacks %q:\n%s", want, text)
		}
	}
	if len(job.QR) != 1 || !strings.HasPrefix(job.QR[0], "posagent test ") || job.Overflow != 0 {
		t.Errorf("QR %q, overflow %d", job.QR, job.Overflow)
	}
	if !strings.Contains(out, `"printed": true`) && !strings.Contains(out, `"printed":true`) {
		t.Errorf("stdout %q", out)
	}
}

func TestTestPrint_PaperOut(t *testing.T) {
	s := startSim(t)
	s.Printer.PaperOut(true)
	code, _, stderr := run(t, "", "test", "print", "--config", simConfig(t, s))
	if code != 1 || !strings.Contains(stderr, "load paper") {
		t.Errorf("exit %d, %q", code, stderr)
	}
}

func TestTestDisplay(t *testing.T) {
	s := startSim(t)
	code, out, stderr := run(t, "", "test", "display", "--config", simConfig(t, s))
	if code != 0 || !strings.Contains(out, rulerLine(20)) {
		t.Fatalf("exit %d: %s %s", code, out, stderr)
	}
	want := displayPattern()
	waitFor(t, func() bool { return s.Display.Screen() == want }, func() string { return fmt.Sprintf("display shows %q, want %q", s.Display.Screen(), want) })
}

// waitFor polls an observable condition (the simulator's screen, updated by its own goroutine).
func waitFor(t *testing.T, ok func() bool, msg func() string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
	}
}

func TestTestScan(t *testing.T) {
	s := startSim(t)
	// Sent before the command opens the port: the pty keeps it, as a USB adapter would.
	retry(t, func() error {
		return s.Scanner.Scan("134567890123456789", possim.ScanOptions{Suffix: scanner.SuffixCRLF})
	})
	code, out, stderr := run(t, "", "test", "scan", "--json", "--timeout", "5s", "--config", simConfig(t, s))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var rep scanReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err, out)
	}
	if rep.Read != "134567890123456789" || rep.Classification.Scheme != "wechat-pay" {
		t.Errorf("%+v", rep)
	}
}

func TestTestCommand_Errors(t *testing.T) {
	t.Setenv("POSAGENT_CONFIG", "")
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"test", "print"}, 2, "--config with devices.printer.port"},
		{[]string{"test", "display", "--port", "/nonexistent/display"}, 1, "not found"},
		{[]string{"test", "scan", "--config", "/nonexistent.yaml"}, 1, "doctor"},
	} {
		code, _, stderr := run(t, "", tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.msg) {
			t.Errorf("%v: exit %d, %q; want %d with %q", tt.args, code, stderr, tt.code, tt.msg)
		}
	}
}
