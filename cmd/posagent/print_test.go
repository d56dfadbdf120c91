package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim/possimtest"
)

const printReceipt = `{"currency": "CNY",
 "header": ["便利店 Corner Shop", "No. 1 Example Road"],
 "items": [{"name": "矿泉水 Water 550ml", "quantity": 2, "unit_price": 300, "amount": 600}],
 "totals": [{"label": "合计 Total", "amount": 600}],
 "payments": [{"label": "WeChat Pay", "amount": 600}],
 "lines": ["free text"],
 "qr": "https://example.com/r/42",
 "footer": ["谢谢惠顾 Thank you"]}`

func TestMain_Print(t *testing.T) {
	sim, dev := possimtest.Printer(t, 384)
	file := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(file, []byte(printReceipt), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "", "print", "--port", dev, "--baud", "115200", "--profile", "generic-58", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got printResult
	if err := json.Unmarshal([]byte(out), &got); err != nil || !got.Printed || got.Status != "ready" || got.Bytes == 0 {
		t.Fatalf("output %q (%v)", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	job, err := sim.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.QR) != 1 || job.QR[0] != "https://example.com/r/42" || !strings.Contains(job.Text, "矿泉水 Water 550ml") {
		t.Errorf("printed:\n%s\nQR %q", job.Text, job.QR)
	}

	// From standard input, on an 80 mm profile, with the paper near its end.
	sim.PaperNearEnd(true)
	code, _, stderr = run(t, printReceipt, "print", "--port", dev, "--baud", "115200", "--profile", "generic-80", "-")
	if code != 0 || !strings.Contains(stderr, "warning: paper near end") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if job, err := sim.WaitJob(ctx, 2); err != nil || job.Cuts != 1 {
		t.Fatalf("job 2: %+v, %v", job, err)
	}
}

func TestMain_PrintFailures(t *testing.T) {
	sim, dev := possimtest.Printer(t, 576)
	sim.PaperOut(true)
	code, _, stderr := run(t, printReceipt, "print", "--port", dev, "--baud", "115200", "-")
	if code != 1 || !strings.Contains(stderr, "out of paper") || !strings.Contains(stderr, "hint: load paper") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("paper out: exit %d, stderr %q", code, stderr)
	}
	time.Sleep(3 * sim.IdleEnd)
	if n := len(sim.Jobs()); n != 0 {
		t.Errorf("%d jobs printed on a printer without paper", n)
	}

	bad := strings.Replace(printReceipt, `"quantity": 2`, `"quantity": 0`, 1)
	code, _, stderr = run(t, bad, "print", "--port", dev, "-")
	if code != 1 || !strings.Contains(stderr, "items[0].quantity must be positive") {
		t.Errorf("invalid receipt: exit %d, stderr %q", code, stderr)
	}

	for _, args := range [][]string{
		{"print", "-"},
		{"print", "--port", dev, "--profile", "nope", "-"},
		{"print", "--port", dev, "--baud", "7", "-"},
		{"print", "--port", dev},
	} {
		if code, _, stderr := run(t, printReceipt, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%q)", args, code, stderr)
		}
	}
	code, _, stderr = run(t, printReceipt, "print", "--port", "/dev/nonexistent-printer", "-")
	if code != 1 || !strings.Contains(stderr, "hint:") {
		t.Errorf("missing port: exit %d, stderr %q", code, stderr)
	}
}
