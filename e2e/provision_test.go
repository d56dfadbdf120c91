package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/internal/flock"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// TestProvision_EndToEnd provisions a terminal from acquirerd's bundle with posagent
// provision, rotates its secret (the old one accepted for the grace period, then not) and
// revokes it (401 with a hint), all through the real binaries.
func TestProvision_EndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries; skipped with -short (and under emulation, where they are cross-built)")
	}
	bin := buildBinaries(t)
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "acq.db")
	_, url := startProc(t, bin, dir, "acquirerd.log", "acquirerd listening on ", nil, "acquirerd", "--listen", "127.0.0.1:0", "--db", db)
	runBin := func(wantCode int, name string, args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("%s %s: exit %d, want %d\nstdout: %s\nstderr: %s", name, strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	etc, state := filepath.Join(dir, "etc"), filepath.Join(dir, "state")
	bundle := filepath.Join(dir, "DEMO-T1.json")
	provision := func(wantCode int, bundle string, extra ...string) (string, string) {
		return runBin(wantCode, "posagent", append([]string{"provision", "--bundle", bundle, "--config-dir", etc, "--state-dir", state}, extra...)...)
	}
	readBundle := func(path string) wire.Bundle {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var b wire.Bundle
		if err := json.Unmarshal(data, &b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	ping := func(b wire.Bundle) error {
		t.Helper()
		key, err := offline.NewKey(mustHex(t, b.Secret))
		if err != nil {
			t.Fatal(err)
		}
		c, err := uplink.New(b.AcquirerURL, b.Terminal, key)
		if err != nil {
			t.Fatal(err)
		}
		c.MaxAttempts = 1
		_, err = c.Ping(t.Context())
		return err
	}
	mode := func(path string) os.FileMode {
		t.Helper()
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}

	out, _ := runBin(0, "acquirerd", "terminals", "add", "DEMO-T1", "--db", db, "--bundle", bundle, "--url", url)
	if strings.Contains(out, readBundle(bundle).Secret) {
		t.Fatalf("terminals add --bundle printed the secret: %s", out)
	}
	if got := mode(bundle); got != 0o600 {
		t.Fatalf("bundle mode %o, want 600", got)
	}
	first := readBundle(bundle)
	if first.Terminal != "DEMO-T1" || first.AcquirerURL != url || len(first.Secret) != 64 {
		t.Fatalf("bundle: %+v", first)
	}

	out, _ = provision(0, bundle)
	if !regexp.MustCompile(`^provisioned DEMO-T1: acquirer reachable, clock skew \d+\.\d s\n$`).MatchString(out) {
		t.Fatalf("provision said %q", out)
	}
	for path, want := range map[string]os.FileMode{filepath.Join(etc, "key"): 0o600, filepath.Join(etc, "env"): 0o600, etc: 0o700, state: 0o700} {
		if got := mode(path); got != want {
			t.Errorf("%s: mode %o, want %o", path, got, want)
		}
	}
	// What it wrote is a configuration the agent accepts, with the env file systemd reads.
	env := map[string]string{}
	data, _ := os.ReadFile(filepath.Join(etc, "env"))
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	cfg, err := device.LoadConfig(filepath.Join(etc, "posagent.yaml"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("the provisioned config: %v", err)
	}
	if cfg.Terminal != "DEMO-T1" || cfg.Acquirer.URL != url || cfg.KeyFile != filepath.Join(etc, "key") || cfg.StateDir != state {
		t.Fatalf("config: %+v", cfg)
	}
	if _, err := offline.LoadKey(cfg.KeyFile, false); err != nil {
		t.Fatalf("the provisioned key: %v", err)
	}
	token := env["POSAGENT_API_TOKEN"]
	if len(token) < 16 {
		t.Fatalf("no API token in env: %q", data)
	}

	// A provisioned terminal is not overwritten without --force.
	keyBefore, _ := os.ReadFile(cfg.KeyFile)
	_, errOut := provision(1, bundle)
	if !strings.Contains(errOut, "--force") {
		t.Fatalf("second provision: %s", errOut)
	}
	if keyAfter, _ := os.ReadFile(cfg.KeyFile); !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("the key changed without --force")
	}

	// Sales stored offline under the first secret, not yet uploaded.
	journalPath := filepath.Join(state, "journal.db")
	openJournal := func(b wire.Bundle) *offline.Journal {
		t.Helper()
		key, err := offline.NewKey(mustHex(t, b.Secret))
		if err != nil {
			t.Fatal(err)
		}
		j, err := offline.Open(journalPath, offline.Options{Key: key, Terminal: "DEMO-T1", Policy: offline.Policy{
			Methods: []posagent.Method{posagent.MethodWalletCode}, Limits: map[string]offline.Limit{"CNY": {PerTransaction: 100000, Outstanding: 1000000}}, MaxCount: 100}})
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	j := openJournal(first)
	for i := range 3 {
		if _, _, err := j.Append(t.Context(), offline.NewSale{IdempotencyKey: fmt.Sprintf("rot-%d", i), Reference: "R", Offline: true,
			Amount: posagent.Amount{Minor: int64(1000 + i), Currency: cnyCurrency(t)}, Method: posagent.MethodWalletCode, Scheme: posagent.SchemeWeChatPay,
			Credential: "134567890123456789"}); err != nil {
			t.Fatal(err)
		}
	}
	j.Close()

	// Rotation: the new secret works at once, the old one during the grace period.
	rotated := filepath.Join(dir, "DEMO-T1-rotated.json")
	runBin(0, "acquirerd", "terminals", "rotate", "DEMO-T1", "--db", db, "--grace", "1h", "--bundle", rotated, "--url", url)
	second := readBundle(rotated)
	if second.Secret == first.Secret {
		t.Fatal("rotate kept the secret")
	}
	if err := ping(first); err != nil {
		t.Fatalf("the old secret within the grace period: %v", err)
	}
	// A running agent holds the journal: provisioning waits for it to stop.
	lock, err := flock.Acquire(journalPath + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	_, errOut = provision(1, rotated, "--force")
	lock.Release()
	if !strings.Contains(errOut, "systemctl stop posagent") {
		t.Fatalf("provision beside a running agent: %q", errOut)
	}
	out, _ = provision(0, rotated, "--force")
	if !strings.Contains(out, "uploaded 3 records under the current key") || !strings.Contains(out, "provisioned DEMO-T1: acquirer reachable") {
		t.Fatalf("provision after rotate: %q", out)
	}
	// The journal moved to the new secret: it verifies under it, nothing waits, and a new
	// sale goes up under it.
	j = openJournal(second)
	if rep, err := j.Verify(t.Context()); err != nil || rep.Broken != nil || !rep.MACChecked || rep.Records != 3 {
		t.Fatalf("the journal after provision --force: %+v %v", rep, err)
	}
	j.Close()
	ledger, _ := runBin(0, "acquirerd", "ledger", "--db", db, "--terminal", "DEMO-T1", "--json")
	if got := strings.Count(ledger, `"sequence"`); got != 3 {
		t.Fatalf("the acquirer's ledger holds %d records, want 3:\n%s", got, ledger)
	}
	if data, _ := os.ReadFile(filepath.Join(etc, "env")); !strings.Contains(string(data), "POSAGENT_API_TOKEN="+token+"\n") {
		t.Fatalf("provision --force replaced the API token: %s", data)
	}
	// Without a grace period the secret it replaces is refused at once.
	third := filepath.Join(dir, "DEMO-T1-third.json")
	runBin(0, "acquirerd", "terminals", "rotate", "DEMO-T1", "--db", db, "--grace", "0s", "--bundle", third, "--url", url)
	if err := ping(second); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("the replaced secret with no grace: %v, want 401", err)
	}
	if err := ping(readBundle(third)); err != nil {
		t.Fatalf("the newest secret: %v", err)
	}

	// Revocation: refused at once, with a hint.
	runBin(0, "acquirerd", "terminals", "revoke", "DEMO-T1", "--db", db)
	_, errOut = provision(1, third, "--force")
	for _, want := range []string{"401", "revoked", "acquirerd terminals add"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("provision of a revoked terminal: %q lacks %q", errOut, want)
		}
	}
	out, _ = runBin(0, "acquirerd", "terminals", "ls", "--db", db)
	if !regexp.MustCompile(`(?m)^DEMO-T1 +\S+ +revoked `).MatchString(out) {
		t.Fatalf("terminals ls:\n%s", out)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cnyCurrency(t *testing.T) posagent.Currency {
	t.Helper()
	c, err := posagent.LookupCurrency("CNY")
	if err != nil {
		t.Fatal(err)
	}
	return c
}
