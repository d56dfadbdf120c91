package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/update"
)

// Started with fakeAgentEnv set, this test binary is a fake agent for 'update apply': it
// serves /v1/status as the version in fakeVersionEnv, or exits at once when fakeModeEnv is
// "exit". The versions installed are scripts that run it so (fakeAgentBinary). TestMain is
// otherwise the default.
const (
	fakeAgentEnv   = "POSAGENT_UPDATE_TEST_AGENT"
	fakeAddrEnv    = "POSAGENT_UPDATE_TEST_ADDR"
	fakeModeEnv    = "POSAGENT_UPDATE_TEST_MODE"
	fakeVersionEnv = "POSAGENT_UPDATE_TEST_VERSION"
	fakeToken      = "cli-test-token"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeAgentEnv) == "1" {
		fakeAgent()
		return
	}
	os.Exit(m.Run())
}

func fakeAgent() {
	if os.Getenv(fakeModeEnv) == "exit" {
		os.Exit(3)
	}
	version := os.Getenv(fakeVersionEnv)
	http.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"version": version, "journal": map[string]any{"records": 3}})
	})
	if err := http.ListenAndServe(os.Getenv(fakeAddrEnv), nil); err != nil {
		os.Exit(2)
	}
}

// fakeAgentBinary writes the payload of a fake version: a script that runs this test binary
// as the agent (under qemu-user through POSAGENT_TEST_EXEC, as make test-arm runs the tests).
func fakeAgentBinary(t *testing.T, mode, version string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\n# posagent %s (test agent: %s)\n%s=%s %s=%s exec %s %q -test.run='^$'\n",
		version, mode, fakeModeEnv, mode, fakeVersionEnv, version, os.Getenv("POSAGENT_TEST_EXEC"), self)
	p := filepath.Join(t.TempDir(), "posagent-"+version)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func updateKeys(t *testing.T) (priv, pub, dir string) {
	t.Helper()
	dir = t.TempDir()
	code, out, stderr := run(t, "", "update", "keygen", "--out", dir)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	privs, _ := filepath.Glob(filepath.Join(dir, "*.key"))
	pubs, _ := filepath.Glob(filepath.Join(dir, "*.pub"))
	if len(privs) != 1 || len(pubs) != 1 || !strings.Contains(out, strings.TrimSuffix(filepath.Base(pubs[0]), ".pub")) {
		t.Fatalf("keygen wrote %v %v, printed %q", privs, pubs, out)
	}
	fi, _ := os.Stat(privs[0])
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("private key mode %v, want %v", got, want)
	}
	return privs[0], pubs[0], dir
}

func signBundle(t *testing.T, key, version, arch, bin string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), version+"-"+arch+".upd")
	code, _, stderr := run(t, "", "update", "sign", "--key", key, "--version", version, "--arch", arch, bin, "--out", out)
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	return out
}

func TestUpdate_Verify(t *testing.T) {
	priv, pub, keysDir := updateKeys(t)
	otherPriv, otherPub, _ := updateKeys(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "posagent")
	os.WriteFile(bin, []byte(strings.Repeat("a binary ", 1000)), 0o755)
	good := signBundle(t, priv, "1.5.0", "arm64", bin)
	byOther := signBundle(t, otherPriv, "1.5.0", "arm64", bin)
	raw, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	truncated := write("truncated", raw[:len(raw)-10])
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-10] ^= 1
	tampered := write("tampered", flipped)
	badSig := write("badsig", []byte(strings.Replace(string(raw), `"version":"1.5.0"`, `"version":"1.6.0"`, 1)))
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // on stdout when 0, else on stderr
	}{
		{"good, one key", []string{"--pub", pub, "--arch", "arm64", "--running-version", "1.4.9", good}, 0, `"version": "1.5.0"`},
		{"good, key directory", []string{"--keys", keysDir, "--arch", "arm64", "--running-version", "1.4.9", good}, 0, `"arch": "arm64"`},
		{"bad signature", []string{"--pub", pub, "--arch", "arm64", badSig}, 1, "bad signature"},
		{"unknown key", []string{"--pub", pub, "--arch", "arm64", byOther}, 1, "unknown signing key"},
		{"key rotated out", []string{"--pub", otherPub, "--arch", "arm64", good}, 1, "unknown signing key"},
		{"digest mismatch", []string{"--pub", pub, "--arch", "arm64", tampered}, 1, "digest mismatch"},
		{"truncated", []string{"--pub", pub, "--arch", "arm64", truncated}, 1, "truncated"},
		{"not a bundle", []string{"--pub", pub, "--arch", "arm64", bin}, 1, "not an update bundle"},
		{"wrong architecture", []string{"--pub", pub, "--arch", "armv7", good}, 1, "wrong architecture: bundle is for arm64, this terminal runs armv7"},
		{"older version", []string{"--pub", pub, "--arch", "arm64", "--running-version", "1.10.0", good}, 1, "not newer than the running version"},
		{"older version allowed", []string{"--pub", pub, "--arch", "arm64", "--running-version", "1.10.0", "--allow-downgrade", good}, 0, `"version": "1.5.0"`},
		{"no such bundle", []string{"--pub", pub, filepath.Join(dir, "nope")}, 1, "no such file"},
		{"no trusted keys", []string{"--keys", t.TempDir(), good}, 1, "no trusted update keys"},
		{"no bundle given", []string{"--pub", pub}, 2, "takes the BUNDLE file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(t, "", append([]string{"update", "verify"}, tt.args...)...)
			got := stderr
			if tt.wantCode == 0 {
				got = stdout
			}
			if code != tt.wantCode || !strings.Contains(got, tt.want) {
				t.Fatalf("exit %d, want %d; got %q, want it to contain %q", code, tt.wantCode, got, tt.want)
			}
			if code != 0 && strings.Count(strings.TrimRight(stderr, "\n"), "\n") != 0 {
				t.Errorf("stderr is not one line: %q", stderr)
			}
		})
	}
}

func TestUpdate_SignUsage(t *testing.T) {
	priv, _, _ := updateKeys(t)
	bin := filepath.Join(t.TempDir(), "posagent")
	os.WriteFile(bin, []byte("x"), 0o755)
	for _, args := range [][]string{
		{"--key", priv, "--version", "1.0.0", "--arch", "armhf", bin, "--out", bin + ".upd"},
		{"--key", priv, "--version", "one", "--arch", "arm64", bin, "--out", bin + ".upd"},
		{"--key", priv, "--version", "1.0.0", "--arch", "arm64", bin},
		{"--key", priv, "--version", "1.0.0", "--arch", "arm64", "--out", bin + ".upd"},
	} {
		if code, _, stderr := run(t, "", append([]string{"update", "sign"}, args...)...); code != 2 {
			t.Errorf("sign %v: exit %d, want 2 (%s)", args, code, stderr)
		}
	}
}

// TestUpdate_Apply runs the command as a technician would, with a restart command that
// plays systemd: it stops the agent it started last and starts ROOT/current/posagent.
func TestUpdate_Apply(t *testing.T) {
	priv, _, keysDir := updateKeys(t)
	root := filepath.Join(t.TempDir(), "lib")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	pidFile := filepath.Join(t.TempDir(), "agent.pid")
	t.Cleanup(func() {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	// stop the last agent, polling up to 2 s for it to be gone (or a zombie: its sockets are
	// closed then), then start current
	restart := fmt.Sprintf(`if [ -f %[1]s ]; then pid=$(cat %[1]s); kill -9 $pid 2>/dev/null; i=0; `+
		`while [ $i -lt 40 ] && [ -d /proc/$pid ] && ! grep -q '^State:.*Z' /proc/$pid/status 2>/dev/null; do sleep 0.05; i=$((i+1)); done; fi; `+
		`%[2]s=1 %[3]s=%[4]s %[5]s/current/posagent >/dev/null 2>&1 & echo $! > %[1]s`,
		pidFile, fakeAgentEnv, fakeAddrEnv, addr, root)
	// a good update does not wait for its deadline (20 s: a loaded machine running the race
	// detector may take seconds to start a process); a bad one is rolled back at its 2 s
	apply := func(bundle, deadline string) (int, string, string) {
		return run(t, "", "update", "apply", bundle, "--keys", keysDir, "--root", root, "--arch", "amd64",
			"--restart-command", restart, "--health-url", "http://"+addr+"/v1/status", "--token", fakeToken, "--deadline", deadline)
	}
	code, _, stderr := apply(signBundle(t, priv, "1.0.0", "amd64", fakeAgentBinary(t, "good", "1.0.0")), "20s")
	if code != 0 {
		t.Fatalf("apply 1.0.0: exit %d: %s", code, stderr)
	}
	start := time.Now()
	code, out, stderr := apply(signBundle(t, priv, "2.0.0", "amd64", fakeAgentBinary(t, "good", "2.0.0")), "20s")
	if code != 0 || !strings.Contains(out, "posagent 2.0.0 is running and healthy") {
		t.Fatalf("apply 2.0.0: exit %d: %s%s", code, out, stderr)
	}
	t.Logf("apply to healthy: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	code, _, stderr = apply(signBundle(t, priv, "2.1.0", "amd64", fakeAgentBinary(t, "exit", "2.1.0")), "2s")
	if code != 1 || !strings.Contains(stderr, "update rolled back to 2.0.0") {
		t.Fatalf("apply of an agent that exits at once: exit %d: %s", code, stderr)
	}
	t.Logf("apply to rolled back: %s", time.Since(start).Round(time.Millisecond))
	code, _, stderr = apply(signBundle(t, priv, "1.9.0", "amd64", fakeAgentBinary(t, "good", "1.9.0")), "2s")
	if code != 1 || !strings.Contains(stderr, "not newer than the running version: bundle has 1.9.0, running 2.0.0") {
		t.Fatalf("apply of an older version: exit %d: %s", code, stderr)
	}
	code, out, stderr = run(t, "", "update", "status", "--root", root)
	var st struct {
		Current, Previous string
		Last              update.State `json:"last_apply"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status: exit %d: %s%s", code, out, stderr)
	}
	if st.Current != "2.0.0" || st.Previous != "1.0.0" || st.Last.Phase != update.PhaseRolledBack || st.Last.To != "2.1.0" {
		t.Errorf("status = %+v", st)
	}
	// a crash after the switch: status resolves it by going back
	os.Remove(filepath.Join(root, "current"))
	os.Symlink("versions/2.1.0", filepath.Join(root, "current"))
	os.WriteFile(filepath.Join(root, "update-state.json"), []byte(`{"phase":"switched","from":"2.0.0","to":"2.1.0"}`), 0o644)
	code, out, stderr = run(t, "", "update", "status", "--root", root, "--restart-command", restart,
		"--health-url", "http://"+addr+"/v1/status", "--token", fakeToken, "--deadline", "20s")
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.Current != "2.0.0" || st.Last.Phase != update.PhaseRolledBack {
		t.Fatalf("status after a crash: exit %d: %s%s", code, out, stderr)
	}
}
