package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// cpmCode is an EMV consumer-presented code (UnionPay), which the offline policy accepts.
const cpmCode = "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQgwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="

// buildVersion builds posagent stamped with version into dir.
func buildVersion(t *testing.T, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "posagent-"+version)
	cmd := exec.Command("go", "build", "-ldflags", "-X main.version="+version, "-o", out, "./cmd/posagent")
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", version, err, b)
	}
	return out
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestUpdate_JournalSurvives: a terminal with sales stored offline (the acquirer
// unreachable) takes a signed update through `posagent update apply` with the real agent
// restarted by the restart command; the new version passes the health check, the journal is
// untouched by the update, and the stored sales sync after it (the chain verified at the
// acquirer, every sale in its ledger).
func TestUpdate_JournalSurvives(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the agent twice; skipped with -short")
	}
	arch := runtime.GOARCH
	if arch != "amd64" && arch != "arm64" {
		t.Skipf("bundles here are signed for amd64 or arm64, not %s", arch)
	}
	bin := buildBinaries(t)
	st := newStack(t, bin, acqOptions{SimDelay: time.Second, SimPending: time.Second})
	work := t.TempDir()
	v1, v2 := buildVersion(t, work, "1.0.0"), buildVersion(t, work, "1.1.0")
	root, keys := filepath.Join(work, "root"), filepath.Join(work, "keys")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(bin, "posagent"), args...)
		cmd.Dir = st.dir
		cmd.Env = append(os.Environ(), "POSAGENT_API_TOKEN="+apiToken)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("posagent %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return string(b)
	}
	run("update", "keygen", "--out", keys)
	var priv string
	for _, m := range must(filepath.Glob(filepath.Join(keys, "*.key"))) {
		priv = m
	}
	b1, b2 := filepath.Join(work, "v1.bundle"), filepath.Join(work, "v2.bundle")
	run("update", "sign", "--key", priv, "--version", "1.0.0", "--arch", arch, v1, "--out", b1)
	run("update", "sign", "--key", priv, "--version", "1.1.0", "--arch", arch, v2, "--out", b2)

	// The agent listens on a fixed port (the health check's), offline at first.
	port := freePort(t)
	config := strings.Replace(agentConfig, "listen: 127.0.0.1:0", fmt.Sprintf("listen: 127.0.0.1:%d", port), 1)
	st.writeConfig(config)
	restart := filepath.Join(work, "restart.sh")
	script := `#!/bin/sh
# Restarts the agent on ROOT/current/posagent, as systemctl restart would.
cd "` + st.dir + `"
if [ -f agent.pid ]; then
  pid=$(cat agent.pid)
  kill "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
fi
POSAGENT_API_TOKEN=` + apiToken + ` "` + root + `/current/posagent" run --config posagent.yaml >>agent.log 2>&1 </dev/null &
echo $! >agent.pid
`
	if err := os.WriteFile(restart, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("sh", "-c", `cd "`+st.dir+`" && [ -f agent.pid ] && kill $(cat agent.pid)`).Run() })
	apply := func(bundle string) time.Duration {
		t.Helper()
		t0 := time.Now()
		run("update", "apply", "--keys", keys, "--root", root, "--restart-command", restart,
			"--health-url", fmt.Sprintf("http://127.0.0.1:%d/v1/status", port), "--token", apiToken, "--deadline", "30s", bundle)
		return time.Since(t0)
	}
	apply(b1)
	st.api = fmt.Sprintf("http://127.0.0.1:%d", port)

	// Two sales stored offline.
	var stored []string
	for i, amount := range []int64{1200, 3400} {
		var p struct{ ID, State string }
		if code, err := st.do("POST", "/v1/payments", map[string]any{"amount": amount, "currency": "CNY", "idempotency_key": fmt.Sprint("k-upd-", i), "mode": "scan"}, &p); err != nil || code != 201 {
			t.Fatalf("create: %d %v", code, err)
		}
		if err := st.scan(cpmCode); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for p.State != "stored" {
			if time.Now().After(deadline) {
				t.Fatalf("sale %d: %s, want stored\n%s", i, p.State, tail(filepath.Join(st.dir, "agent.log"), 3000))
			}
			time.Sleep(20 * time.Millisecond)
			st.do("GET", "/v1/payments/"+p.ID, nil, &p)
		}
		stored = append(stored, p.ID)
	}

	// The acquirer is reachable after the restart the update makes.
	st.writeConfig(strings.Replace(config, "url: http://127.0.0.1:1", "url: "+st.acqURL, 1))
	took := apply(b2)
	t.Logf("update apply to healthy: %v", took.Round(time.Millisecond))

	var status struct {
		Version string `json:"version"`
	}
	if code, err := st.do("GET", "/v1/status", nil, &status); err != nil || code != 200 || status.Version != "1.1.0" {
		t.Fatalf("after the update: %d %v version %q", code, err, status.Version)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range stored {
		var p struct{ State string }
		for p.State != "approved" {
			if time.Now().After(deadline) {
				t.Fatalf("sale %s after the update: %s, want approved (synced)\n%s", id, p.State, tail(filepath.Join(st.dir, "agent.log"), 3000))
			}
			time.Sleep(50 * time.Millisecond)
			st.do("GET", "/v1/payments/"+id, nil, &p)
		}
	}
	ledger, err := st.ledger()
	if err != nil {
		t.Fatal(err)
	}
	captured := 0
	for _, l := range ledger {
		if strings.HasPrefix(l.IdempotencyKey, "k-upd-") && l.Captured == l.Amount && l.State == "approved" {
			captured++
		}
	}
	if captured != 2 {
		t.Errorf("the acquirer captured %d of the 2 stored sales: %+v", captured, ledger)
	}
	out := run("queue", "verify", "--journal", filepath.Join(st.dir, "state", "journal.db"), "--key-file", filepath.Join(st.dir, "terminal.key"))
	if !strings.Contains(out, "chain: ok, 2 records") {
		t.Errorf("journal verify after the update:\n%s", out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
