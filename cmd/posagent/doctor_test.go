package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/device"

	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// doctorSetup writes a config for a terminal whose devices are possim's and whose acquirer
// is a real acquirer endpoint on loopback.
type doctorSetup struct {
	dir, config, key, acquirer string
	sim                        *possim.Sim
}

func newDoctorSetup(t *testing.T) *doctorSetup {
	t.Helper()
	s := &doctorSetup{dir: t.TempDir(), sim: startSim(t)}
	secret := bytes.Repeat([]byte{7}, 32)
	s.key = filepath.Join(s.dir, "terminal.key")
	if err := os.WriteFile(s.key, []byte(hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := acquirer.OpenSQLite(filepath.Join(t.TempDir(), "acq.db"), bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.AddTerminal(context.Background(), "T1", secret, wire.Policy{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(acquirer.New(store, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord}))
	t.Cleanup(srv.Close)
	s.acquirer = srv.URL
	s.config = filepath.Join(s.dir, "posagent.yaml")
	s.writeConfig(t, fmt.Sprintf(`terminal: T1
state_dir: %s
key_file: %s
api: {token: doctor-test-token-0123456789}
acquirer: {url: %s, request_timeout: 2s}
devices:
  printer: {port: %s, baud: 115200}
  display: {port: %s}
  scanner: {port: %s}
`, filepath.Join(s.dir, "state"), s.key, srv.URL,
		s.sim.Path(possim.PrinterName), s.sim.Path(possim.DisplayName), s.sim.Path(possim.ScannerName)))
	return s
}

func (s *doctorSetup) writeConfig(t *testing.T, text string) {
	t.Helper()
	if err := os.WriteFile(s.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// doctorRun runs posagent doctor --json and returns the exit status and the checks by name.
func doctorRun(t *testing.T, config string) (int, map[string]check) {
	t.Helper()
	code, out, stderr := run(t, "", "doctor", "--config", config, "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\nstdout %s\nstderr %s", err, out, stderr)
	}
	checks := map[string]check{}
	for _, c := range rep.Checks {
		checks[c.Name] = c
	}
	if rep.Healthy != (code == 0) {
		t.Errorf("healthy %v but exit %d", rep.Healthy, code)
	}
	return code, checks
}

func TestDoctor_Healthy(t *testing.T) {
	s := newDoctorSetup(t)
	code, checks := doctorRun(t, s.config)
	if code != 0 {
		t.Fatalf("exit %d: %+v", code, checks)
	}
	for _, name := range []string{"config", "key", "printer", "display", "scanner", "journal", "acquirer", "clock", "disk"} {
		if got := checks[name].Verdict; got != verdictOK {
			t.Errorf("%s: %s %+v, want ok", name, got, checks[name])
		}
	}
	if got := checks["certificate"].Verdict; got != verdictSkip {
		t.Errorf("certificate: %s, want skip", got)
	}
	// The text report: one line per check.
	code, out, _ := run(t, "", "doctor", "--config", s.config)
	if code != 0 || strings.Count(out, "\n") != len(checks) || !strings.Contains(out, "ok    printer") {
		t.Errorf("text report: exit %d\n%s", code, out)
	}
}

// TestDoctor_Faults injects each fault possim simulates and each bad config or permission,
// and checks the verdict and the hint.
func TestDoctor_Faults(t *testing.T) {
	tests := []struct {
		name    string
		inject  func(t *testing.T, s *doctorSetup)
		check   string
		verdict string
		detail  string // in the detail
		hint    string // in the hint
	}{
		{"paper out", func(t *testing.T, s *doctorSetup) { s.sim.Printer.PaperOut(true) }, "printer", verdictFail, "paper-end", "load a paper roll"},
		{"paper near end", func(t *testing.T, s *doctorSetup) { s.sim.Printer.PaperNearEnd(true) }, "printer", verdictWarn, "paper-near-end", "new roll"},
		{"cover open", func(t *testing.T, s *doctorSetup) { s.sim.Printer.CoverOpen(true) }, "printer", verdictFail, "cover-open", "close the printer's cover"},
		{"offline", func(t *testing.T, s *doctorSetup) { s.sim.Printer.Offline(true) }, "printer", verdictFail, "offline", "switch it off and on"},
		{"silent", func(t *testing.T, s *doctorSetup) { s.sim.Printer.Silent(true) }, "printer", verdictFail, "no answer", "power"},
		{"printer unplugged", func(t *testing.T, s *doctorSetup) { unplug(t, s.sim, possim.PrinterName) }, "printer", verdictFail, "unplugged", "check its cable"},
		{"display unplugged", func(t *testing.T, s *doctorSetup) { unplug(t, s.sim, possim.DisplayName) }, "display", verdictFail, "unplugged", "check its cable"},
		{"scanner unplugged", func(t *testing.T, s *doctorSetup) { unplug(t, s.sim, possim.ScannerName) }, "scanner", verdictFail, "unplugged", "check its cable"},
		{"key readable by others", func(t *testing.T, s *doctorSetup) { chmod(t, s.key, 0o644) }, "key", verdictFail, "0644", "chmod 600"},
		{"key missing", func(t *testing.T, s *doctorSetup) { os.Remove(s.key) }, "key", verdictFail, "missing", "posagent provision"},
		{"key not a key", func(t *testing.T, s *doctorSetup) { os.WriteFile(s.key, []byte("nonsense"), 0o600) }, "key", verdictFail, "journal key", "provision the terminal again"},
		{"key dir writable by all", func(t *testing.T, s *doctorSetup) { chmod(t, s.dir, 0o777) }, "key", verdictFail, "writable by anyone", "chmod o-w"},
		{"key dir writable by all but sticky", func(t *testing.T, s *doctorSetup) { chmod(t, s.dir, 0o777|os.ModeSticky) }, "key", verdictOK, "mode 0600", ""},
		{"wrong key at the acquirer", func(t *testing.T, s *doctorSetup) {
			os.WriteFile(s.key, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
		}, "acquirer", verdictFail, "", "refuses this terminal's signature"},
		{"config missing", func(t *testing.T, s *doctorSetup) { os.Remove(s.config) }, "config", verdictFail, "no such file", "--config"},
		{"config unknown field", func(t *testing.T, s *doctorSetup) { appendConfig(t, s, "colour: blue\n") }, "config", verdictFail, "colour", "configs/demo.yaml"},
		{"config invalid value", func(t *testing.T, s *doctorSetup) {
			b, _ := os.ReadFile(s.config)
			s.writeConfig(t, strings.Replace(string(b), "request_timeout: 2s", "request_timeout: soon", 1))
		}, "config", verdictFail, "request_timeout", "configs/demo.yaml"},
		{"acquirer unreachable", func(t *testing.T, s *doctorSetup) {
			b, _ := os.ReadFile(s.config)
			s.writeConfig(t, strings.Replace(string(b), s.acquirer, "http://127.0.0.1:1", 1)) // port 1: nothing listens
		}, "acquirer", verdictFail, "", "check the network"},
		{"certificate unreadable", func(t *testing.T, s *doctorSetup) {
			b, _ := os.ReadFile(s.config)
			s.writeConfig(t, strings.Replace(string(b), "api: {token: doctor-test-token-0123456789}",
				"api: {token: doctor-test-token-0123456789, tls_cert: "+filepath.Join(s.dir, "none.pem")+", tls_key: "+filepath.Join(s.dir, "none-key.pem")+"}", 1))
		}, "certificate", verdictFail, "", "api.tls_cert"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newDoctorSetup(t)
			tt.inject(t, s)
			code, checks := doctorRun(t, s.config)
			c, ok := checks[tt.check]
			if !ok {
				t.Fatalf("no %s check: %+v", tt.check, checks)
			}
			if c.Verdict != tt.verdict || !strings.Contains(c.Detail, tt.detail) || !strings.Contains(c.Hint, tt.hint) {
				t.Errorf("%s: %+v; want %s, detail with %q, hint with %q", tt.check, c, tt.verdict, tt.detail, tt.hint)
			}
			if want := map[string]int{verdictFail: 1, verdictWarn: 0}[tt.verdict]; code != want {
				t.Errorf("exit %d, want %d", code, want)
			}
		})
	}
}

func unplug(t *testing.T, s *possim.Sim, name string) {
	t.Helper()
	if err := s.Unplug(name, -1); err != nil {
		t.Fatal(err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func appendConfig(t *testing.T, s *doctorSetup, text string) {
	t.Helper()
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, string(b)+text)
}

func TestDoctor_Usage(t *testing.T) {
	t.Setenv("POSAGENT_CONFIG", "")
	if code, _, stderr := run(t, "", "doctor"); code != 2 || !strings.Contains(stderr, "--config") {
		t.Errorf("exit %d, %q", code, stderr)
	}
}

// TestDoctor_Journal checks a journal with sales stored offline (backlog and age of the
// oldest) and a file that is not a journal.
func TestDoctor_Journal(t *testing.T) {
	s := newDoctorSetup(t)
	journal, keyFile, _ := queueJournal(t)
	b, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(b), "key_file: "+s.key, "key_file: "+keyFile+"\njournal: "+journal, 1)
	s.writeConfig(t, text)
	_, checks := doctorRun(t, s.config)
	c := checks["journal"]
	if c.Verdict != verdictOK || !strings.Contains(c.Detail, "5 records verified") || !strings.Contains(c.Detail, "stored offline, oldest stored") {
		t.Errorf("journal: %+v", c)
	}

	notJournal := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(notJournal, []byte("shopping list\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.writeConfig(t, strings.Replace(text, "journal: "+journal, "journal: "+notJournal, 1))
	code, checks := doctorRun(t, s.config)
	if c := checks["journal"]; code != 1 || c.Verdict != verdictFail || c.Hint == "" {
		t.Errorf("not a journal: exit %d, %+v", code, c)
	}
	if b, _ := os.ReadFile(notJournal); string(b) != "shopping list\n" {
		t.Errorf("doctor changed the file: %q", b)
	}
}

// TestDoctor_RunningAgent: beside a running agent, which holds the journal and the ports,
// doctor reports the devices as the agent sees them (its status API), with the same hints.
func TestDoctor_RunningAgent(t *testing.T) {
	s := newDoctorSetup(t)
	cfg, err := device.LoadConfig(s.config, os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	a, err := device.New(ctx, cfg, device.Options{Log: slog.New(slog.DiscardHandler), Ready: func(addr string) { ready <- addr }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	}
	// The config doctor reads names the address the agent got.
	b, _ := os.ReadFile(s.config)
	s.writeConfig(t, strings.Replace(string(b), "api: {token: doctor-test-token-0123456789}", "api: {token: doctor-test-token-0123456789, listen: \""+addr+"\"}", 1))

	code, checks := doctorRun(t, s.config)
	for _, name := range []string{"printer", "display", "scanner"} {
		if c := checks[name]; c.Verdict != verdictOK || !strings.Contains(c.Detail, "running agent") {
			t.Errorf("%s beside the agent: %+v, want ok from the running agent", name, c)
		}
	}
	if code != 0 {
		t.Fatalf("exit %d: %+v", code, checks)
	}

	s.sim.Printer.PaperOut(true)
	_, checks = doctorRun(t, s.config)
	if c := checks["printer"]; c.Verdict != verdictFail || !strings.Contains(c.Detail, "paper-end") || !strings.Contains(c.Hint, "load a paper roll") {
		t.Errorf("paper out, from the agent: %+v", c)
	}
	s.sim.Printer.PaperOut(false)

	// Unplugged: the agent notices on its own; doctor reports what it knows now.
	// The display is only written to, the scanner only read: both are noticed.
	for _, dev := range []string{possim.DisplayName, possim.ScannerName} {
		unplug(t, s.sim, dev)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, checks = doctorRun(t, s.config)
			c := checks[dev]
			if c.Verdict == verdictFail {
				if !strings.Contains(c.Detail, "disconnected") || !strings.Contains(c.Hint, "check its cable") {
					t.Errorf("%s unplugged, from the agent: %+v", dev, c)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s was unplugged 10 s ago and doctor still says %+v", dev, c)
			}
			<-time.After(50 * time.Millisecond)
		}
	}
}
