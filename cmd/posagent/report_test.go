package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/internal/testio"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// reportAgent writes an agent's config (an acquirer on loopback, no peripherals) and
// returns its path; start runs `posagent run` on it in-process and points
// POSAGENT_LISTEN at the address it serves.
func reportAgent(t *testing.T) (cfgPath string, start func()) {
	t.Helper()
	dir := t.TempDir()
	secret := bytes.Repeat([]byte{9}, offline.KeySize)
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", secret)), 0o600)
	st, err := acquirer.OpenSQLite(filepath.Join(dir, "acq.db"), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.AddTerminal(context.Background(), "T9", secret, wire.Policy{})
	acq := httptest.NewServer(acquirer.New(st, acquirer.Options{Log: slog.New(slog.DiscardHandler)}))
	t.Cleanup(acq.Close)
	cfgPath = filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("terminal: T9\nstate_dir: %s\nkey_file: %s\napi: {listen: \"127.0.0.1:0\"}\nacquirer: {url: %s}\nlog: {format: json}\n",
		filepath.Join(dir, "state"), keyFile, acq.URL)), 0o600)
	t.Setenv("POSAGENT_API_TOKEN", "report-test-token-0123456789")
	return cfgPath, func() {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout, stderr testio.Buffer
		exit := make(chan int, 1)
		go func() {
			exit <- NewMain(strings.NewReader(""), &stdout, &stderr).Run(ctx, []string{"run", "--config", cfgPath})
		}()
		t.Cleanup(func() {
			cancel()
			select {
			case <-exit:
			case <-time.After(10 * time.Second):
				t.Error("run did not stop")
			}
		})
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(stdout.String(), "ready on") {
			if time.Now().After(deadline) {
				t.Fatalf("not ready: %s %s", stdout.String(), stderr.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Setenv("POSAGENT_LISTEN", strings.TrimSpace(strings.TrimPrefix(stdout.String(), "posagent ready on http://")))
	}
}

func TestReport(t *testing.T) {
	cfg, start := reportAgent(t)

	t.Run("agent not running", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		t.Setenv("POSAGENT_LISTEN", addr)
		code, stdout, stderr := run(t, "", "report", "--config", cfg)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "does not answer") ||
			!strings.Contains(stderr, "hint: is 'posagent run' running") {
			t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
	})
	t.Run("usage", func(t *testing.T) {
		if code, _, stderr := run(t, "", "report", "--config", cfg, "--key", "k"); code != 2 || !strings.Contains(stderr, "--close") {
			t.Errorf("--key without --close: exit %d, %q", code, stderr)
		}
		t.Setenv("POSAGENT_CONFIG", "")
		if code, _, stderr := run(t, "", "report"); code != 2 || !strings.Contains(stderr, "--config") {
			t.Errorf("no config: exit %d, %q", code, stderr)
		}
	})

	start()
	t.Run("X", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "report", "--config", cfg)
		for _, want := range []string{"X report (shift not closed), shift no. 1, terminal T9", "No sales in this shift.", "Acquirer: not compared (the period is empty: nothing to compare)"} {
			if code != 0 || !strings.Contains(stdout, want) {
				t.Errorf("exit %d, stdout lacks %q:\n%s%s", code, want, stdout, stderr)
			}
		}
	})
	t.Run("X printed without a printer", func(t *testing.T) {
		code, stdout, _ := run(t, "", "report", "--config", cfg, "--print")
		if code != 0 || !strings.Contains(stdout, "Not printed: no printer is configured") {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
	})
	t.Run("Z", func(t *testing.T) {
		code, stdout, stderr := run(t, "", "report", "--config", cfg, "--close", "--key", "shift-1", "--json")
		var z device.Report
		if code != 0 || json.Unmarshal([]byte(stdout), &z) != nil || z.Kind != "Z" || z.Number != 1 || z.Replayed {
			t.Fatalf("exit %d, %+v\n%s%s", code, z, stdout, stderr)
		}
		code, stdout, _ = run(t, "", "report", "--config", cfg, "--close", "--key", "shift-1")
		if code != 0 || !strings.Contains(stdout, "Z report no. 1") || !strings.Contains(stdout, "already closed with this key") {
			t.Errorf("close again: exit %d:\n%s", code, stdout)
		}
		code, stdout, _ = run(t, "", "report", "--config", cfg, "--close")
		if code != 0 || !strings.Contains(stdout, "Z report no. 2") {
			t.Errorf("second close: exit %d:\n%s", code, stdout)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		t.Setenv("POSAGENT_API_TOKEN", "another-token-0123456789")
		code, _, stderr := run(t, "", "report", "--config", cfg)
		if code != 1 || !strings.Contains(stderr, "unauthorized") || !strings.Contains(stderr, "api.token") {
			t.Errorf("wrong token: exit %d, %q", code, stderr)
		}
	})
}

func TestWriteReport(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.Local)
	rep := &device.Report{Kind: "Z", Number: 4, Terminal: "T1", From: at, To: at.Add(8 * time.Hour), ClosedAt: &at,
		Totals: offline.ShiftTotals{Currencies: []offline.CurrencyTotals{{Currency: "CNY",
			Approved: offline.Count{Count: 2, Amount: 3300}, Online: offline.Count{Count: 2, Amount: 3300},
			PendingOffline:      offline.Count{Count: 1, Amount: 700},
			DeclinedAfterUpload: offline.Count{Count: 1, Amount: 2061},
			ByMethod: map[posagent.Method]offline.Split{"wallet-code": {Approved: offline.Count{Count: 2, Amount: 3300}},
				"emv-cpm": {PendingOffline: offline.Count{Count: 1, Amount: 700}}},
			Net: 3300}}},
		Acquirer:    device.AcquirerComparison{Reason: "the acquirer is unreachable: the totals could not be compared"},
		Differences: []device.Difference{{Code: "declined_after_upload", Message: "sale #7 (20.61 CNY) declined after upload: the money was not collected", Action: "ask the customer"}},
		Print:       &device.ReportSlip{Printed: true},
	}
	var b strings.Builder
	writeReport(&b, rep, false)
	got := b.String()
	for _, want := range []string{
		"Z report no. 4, terminal T1\nPeriod: 2026-03-02 09:00:00 to 2026-03-02 17:00:00 (closed 2026-03-02 09:00:00)\n",
		"\nCNY\n", "  Sales approved  2  33.00", "Pending offline  1   7.00", "after upload  1  20.61", "Net     33.00",
		"By method: emv-cpm 0 0.00 (+1 pending 7.00); wallet-code 2 33.00\n", "By scheme: none\n",
		"Acquirer: not compared (the acquirer is unreachable",
		"Differences (1):\n  - sale #7 (20.61 CNY) declined after upload: the money was not collected\n    what to do: ask the customer\n",
		"Printed.\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}
