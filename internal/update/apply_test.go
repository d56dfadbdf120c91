package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests install small "posagent" binaries that are shell scripts running this
// test binary again as the agent (fakeAgent), with the behaviour and version the script
// names: so a bad version is a bad payload, not a flag of the test. The agent serves
// /v1/status on the address the service gives it in fakeAddrEnv (good), or exits at once
// (exit), or accepts connections and never answers (hang), or answers that its journal is
// not readable (badjournal) or that the scanner is not connected (nodevice).
const (
	fakeAgentEnv   = "POSAGENT_UPDATE_TEST_AGENT"
	fakeAddrEnv    = "POSAGENT_UPDATE_TEST_ADDR"
	fakeModeEnv    = "POSAGENT_UPDATE_TEST_MODE"
	fakeVersionEnv = "POSAGENT_UPDATE_TEST_VERSION"
	fakeToken      = "test-token"
)

func TestMain(m *testing.M) {
	if os.Getenv(fakeAgentEnv) == "1" {
		fakeAgent()
		return
	}
	os.Exit(m.Run())
}

func fakeAgent() {
	mode, version := os.Getenv(fakeModeEnv), os.Getenv(fakeVersionEnv)
	if mode == "exit" {
		os.Exit(3)
	}
	journal := map[string]any{"records": 12, "unacked": 3}
	if mode == "badjournal" {
		journal = map[string]any{"error": "file is not a database"}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		if mode == "hang" { // up, accepting connections, never answering
			select {}
		}
		if r.Header.Get("Authorization") != "Bearer "+fakeToken {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"version": version, "journal": journal,
			"devices": []map[string]any{{"device": "scanner", "configured": true, "connected": mode != "nodevice"}}})
	})
	if err := http.ListenAndServe(os.Getenv(fakeAddrEnv), mux); err != nil {
		fmt.Fprintln(os.Stderr, "fake agent:", err)
		os.Exit(2)
	}
}

// fakeBinary is the payload of a fake version: a script that runs this test binary as the
// agent, mode and version (under qemu-user, through POSAGENT_TEST_EXEC, as make test-arm
// runs the tests).
func fakeBinary(t *testing.T, mode, version string) []byte {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []byte(fmt.Sprintf("#!/bin/sh\n# posagent %s (test agent: %s)\n%s=%s %s=%s exec %s %q -test.run='^$'\n",
		version, mode, fakeModeEnv, mode, fakeVersionEnv, version, os.Getenv("POSAGENT_TEST_EXEC"), self))
}

// service plays systemd for the tests: Restart stops the process it started last and starts
// ROOT/current/posagent.
type service struct {
	t    *testing.T
	root string
	addr string
	mu   sync.Mutex
	cmd  *exec.Cmd
	runs []string // the version each restart started
}

func (s *service) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
	v, err := Layout{s.root}.Current()
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(s.root, currentLink, binaryName))
	cmd.Env = append(os.Environ(), fakeAgentEnv+"=1", fakeAddrEnv+"="+s.addr)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	s.runs = append(s.runs, v)
	return nil
}

func (s *service) stopLocked() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *service) Runs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.runs...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// testDeadline is the deadline of the updates meant to fail: the tests measure the
// rollback against it. Updates meant to succeed get goodDeadline, which they do not wait
// for (Apply returns at the first healthy answer): a loaded CI machine running the race
// detector may take seconds to start a process.
const (
	testDeadline = 2 * time.Second
	goodDeadline = 20 * time.Second
)

// eventuallyHealthy polls the agent until it answers healthy as version.
func (f *fixture) eventuallyHealthy(t *testing.T, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goodDeadline)
	defer cancel()
	a := *f.applier
	a.Deadline = goodDeadline
	if err := a.waitHealthy(ctx, version); err != nil {
		t.Errorf("%s is not healthy: %v", version, err)
	}
}

type fixture struct {
	key     ed25519.PrivateKey
	sign    func(mode, version string) []byte
	applier *Applier
	svc     *service
	root    string
}

// newFixture has 1.0.0 (a good agent) installed, current and healthy.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	priv, keys := testKey(t)
	root := filepath.Join(t.TempDir(), "lib")
	svc := &service{t: t, root: root, addr: freeAddr(t)}
	t.Cleanup(func() { svc.mu.Lock(); svc.stopLocked(); svc.mu.Unlock() })
	h := &HTTPHealth{URL: "http://" + svc.addr + "/v1/status", Token: fakeToken, Client: &http.Client{Timeout: 500 * time.Millisecond}}
	a := &Applier{Layout: Layout{root}, Keys: keys, Policy: Policy{Arch: "arm64", Running: "0.9.0"},
		Restart: svc.Restart, Health: h.Check, Deadline: goodDeadline, Interval: 20 * time.Millisecond, Log: t.Logf}
	f := &fixture{key: priv, applier: a, svc: svc, root: root, sign: func(mode, version string) []byte {
		b, _, err := Sign(priv, version, "arm64", fakeBinary(t, mode, version), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}}
	if r, err := a.Apply(context.Background(), f.sign("good", "1.0.0")); err != nil || r.State.Phase != PhaseHealthy {
		t.Fatalf("first install: %+v, %v", r.State, err)
	}
	if err := h.Baseline(context.Background()); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) layout(t *testing.T) (current, previous string, versions []string) {
	t.Helper()
	l := Layout{f.root}
	current, err := l.Current()
	if err != nil {
		t.Fatal(err)
	}
	previous, err = l.Previous()
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(f.root, versionsDir))
	for _, e := range ents {
		versions = append(versions, e.Name())
	}
	sort.Strings(versions)
	return current, previous, versions
}

func TestApply_GoodUpdate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	start := time.Now()
	r, err := f.applier.Apply(context.Background(), f.sign("good", "1.1.0"))
	if err != nil {
		t.Fatalf("Apply = %v", err)
	}
	t.Logf("apply to healthy: %s (restart to healthy %s)", time.Since(start).Round(time.Millisecond), r.Elapsed.Round(time.Millisecond))
	if got, want := r.State.Phase, PhaseHealthy; got != want {
		t.Errorf("phase = %s, want %s", got, want)
	}
	cur, prev, vs := f.layout(t)
	if cur != "1.1.0" || prev != "1.0.0" || strings.Join(vs, ",") != "1.0.0,1.1.0" {
		t.Errorf("layout: current %s, previous %s, versions %v; want 1.1.0, 1.0.0, [1.0.0 1.1.0]", cur, prev, vs)
	}
	if got, want := strings.Join(f.svc.Runs(), ","), "1.0.0,1.1.0"; got != want {
		t.Errorf("started %s, want %s", got, want)
	}
	fi, err := os.Stat(filepath.Join(f.root, "versions", "1.1.0", "posagent"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("installed binary: %v, %v", fi, err)
	}
	st, _ := Layout{f.root}.ReadState()
	if st.Phase != PhaseHealthy || st.From != "1.0.0" || st.To != "1.1.0" {
		t.Errorf("state file = %+v", st)
	}
	// the next update prunes 1.0.0: current and previous are kept
	if _, err := f.applier.Apply(context.Background(), f.sign("good", "1.2.0")); err != nil {
		t.Fatal(err)
	}
	if _, _, vs := f.layout(t); strings.Join(vs, ",") != "1.1.0,1.2.0" {
		t.Errorf("versions after a second update = %v, want [1.1.0 1.2.0]", vs)
	}
}

func TestApply_RollsBack(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"exit", "hang", "badjournal", "nodevice", "wrongversion"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var bundle []byte
			if mode == "wrongversion" { // a healthy binary that is not the version it was signed as
				bundle = f.signBinary(t, fakeBinary(t, "good", "1.0.5"), "1.1.0")
			} else {
				bundle = f.sign(mode, "1.1.0")
			}
			f.applier.Deadline = testDeadline
			start := time.Now()
			r, err := f.applier.Apply(context.Background(), bundle)
			took := time.Since(start)
			if !errors.Is(err, ErrRolledBack) {
				t.Fatalf("Apply = %v, want ErrRolledBack", err)
			}
			t.Logf("apply to rolled back: %s (restart to rolled back %s): %v", took.Round(time.Millisecond), r.Elapsed.Round(time.Millisecond), err)
			// from the restart: verifying and writing a test binary of tens of MB under -race
			// takes a while before it
			if r.Elapsed > testDeadline+time.Second {
				t.Errorf("rolled back %s after the restart, deadline %s", r.Elapsed, testDeadline)
			}
			if r.State.Phase != PhaseRolledBack {
				t.Errorf("result = %+v", r.State)
			}
			cur, prev, _ := f.layout(t)
			if cur != "1.0.0" || prev != "" {
				t.Errorf("current %s, previous %s; want 1.0.0 and none, as before the apply", cur, prev)
			}
			if got, want := strings.Join(f.svc.Runs(), ","), "1.0.0,1.1.0,1.0.0"; got != want {
				t.Errorf("started %s, want %s", got, want)
			}
			st, _ := Layout{f.root}.ReadState()
			if st.Phase != PhaseRolledBack || st.Reason == "" {
				t.Errorf("state file = %+v", st)
			}
			// the agent answering is the old one
			f.eventuallyHealthy(t, "1.0.0")
		})
	}
}

func (f *fixture) signBinary(t *testing.T, bin []byte, version string) []byte {
	t.Helper()
	b, _, err := Sign(f.key, version, "arm64", bin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestApply_RefusalsTouchNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.sign("good", "1.1.0")
	tampered := bytes.Clone(good)
	tampered[len(tampered)-100] ^= 0xff
	other, _ := testKey(t)
	byOther, _, _ := Sign(other, "1.1.0", "arm64", []byte("bin"), time.Now())
	wrongArch, _, _ := Sign(f.key, "1.1.0", "armv7", []byte("bin"), time.Now())
	tests := []struct {
		name   string
		bundle []byte
		want   error
	}{
		{"truncated", good[:len(good)/2], ErrTruncated},
		{"tampered", tampered, ErrDigest},
		{"unknown key", byOther, ErrUnknownKey},
		{"wrong architecture", wrongArch, ErrArch},
		{"older than current", f.sign("good", "0.9.9"), ErrDowngrade},
		{"the current version again", f.sign("good", "1.0.0"), ErrDowngrade},
		{"not a bundle", []byte("hello"), ErrFormat},
	}
	before := snapshot(t, f.root)
	for _, tt := range tests {
		_, err := f.applier.Apply(context.Background(), tt.bundle)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Apply = %v, want %v", tt.name, err, tt.want)
		}
		if got := snapshot(t, f.root); got != before {
			t.Errorf("%s: the layout changed:\n%s\nwant\n%s", tt.name, got, before)
		}
	}
	if got, want := strings.Join(f.svc.Runs(), ","), "1.0.0"; got != want {
		t.Errorf("restarts: %s, want %s", got, want)
	}
}

// snapshot lists a directory tree: names, modes, link targets, sizes and modification times.
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		target, _ := os.Readlink(p)
		fmt.Fprintf(&sb, "%s %v %s %d %d\n", strings.TrimPrefix(p, root), fi.Mode(), target, fi.Size(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func TestApply_Busy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	release, err := f.applier.lock()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := f.applier.Apply(context.Background(), f.sign("good", "1.1.0")); !errors.Is(err, ErrBusy) {
		t.Errorf("Apply while the layout is locked = %v, want ErrBusy", err)
	}
	if cur, _, vs := f.layout(t); cur != "1.0.0" || len(vs) != 1 {
		t.Errorf("current %s, versions %v: want 1.0.0 untouched", cur, vs)
	}
}

// TestApply_CanceledRollsBack: an apply canceled while it waits for the new version (an
// operator's Ctrl-C) still puts the previous version back.
func TestApply_CanceledRollsBack(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	restart := f.applier.Restart
	f.applier.Restart = func(c context.Context) error {
		err := restart(c)
		cancel() // canceled right after the switch and restart
		return err
	}
	f.applier.Deadline = testDeadline
	r, err := f.applier.Apply(ctx, f.sign("hang", "1.1.0"))
	if !errors.Is(err, ErrRolledBack) || r.State.Phase != PhaseRolledBack {
		t.Fatalf("Apply = %+v, %v; want rolled back", r.State, err)
	}
	if cur, _, _ := f.layout(t); cur != "1.0.0" {
		t.Errorf("current = %s, want 1.0.0", cur)
	}
	if got, want := strings.Join(f.svc.Runs(), ","), "1.0.0,1.1.0,1.0.0"; got != want {
		t.Errorf("started %s, want %s", got, want)
	}
}

func TestApply_ResolvesACrash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	l := Layout{f.root}
	// a crash after the switch, before the health check passed: 1.1.0 is current and running
	if err := l.install("1.1.0", fakeBinary(t, "good", "1.1.0")); err != nil {
		t.Fatal(err)
	}
	l.setLink(prevLink, "1.0.0")
	l.setLink(currentLink, "1.1.0")
	l.writeState(State{Phase: PhaseSwitched, From: "1.0.0", To: "1.1.0", Started: time.Now()})
	f.svc.Restart(context.Background())
	r, err := f.applier.Resolve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.State.Phase != PhaseRolledBack || r.PreviousHealthy != nil {
		t.Errorf("Resolve = %+v (previous healthy: %v), want rolled-back", r.State, r.PreviousHealthy)
	}
	if cur, _, _ := f.layout(t); cur != "1.0.0" {
		t.Errorf("current = %s, want 1.0.0", cur)
	}
	// a crash while installing: current untouched, the apply is recorded aborted, and the
	// next apply goes ahead
	l.writeState(State{Phase: PhaseInstalling, From: "1.0.0", To: "1.2.0", Started: time.Now()})
	os.MkdirAll(filepath.Join(f.root, versionsDir, "1.2.0"), 0o755)
	os.WriteFile(filepath.Join(f.root, versionsDir, "1.2.0", ".posagent.partial"), []byte("half"), 0o755)
	r, err = f.applier.Apply(context.Background(), f.sign("good", "1.2.0"))
	if err != nil || r.State.Phase != PhaseHealthy {
		t.Fatalf("Apply after an interrupted install = %+v, %v", r.State, err)
	}
	if got, want := strings.Join(f.svc.Runs(), ","), "1.0.0,1.1.0,1.0.0,1.2.0"; got != want {
		t.Errorf("started %s, want %s", got, want)
	}
}

// TestApply_FirstInstallFails: with no version to go back to, a bad first install is
// recorded failed and said so.
func TestApply_FirstInstallFails(t *testing.T) {
	t.Parallel()
	priv, keys := testKey(t)
	root := filepath.Join(t.TempDir(), "lib")
	svc := &service{t: t, root: root, addr: freeAddr(t)}
	t.Cleanup(func() { svc.mu.Lock(); svc.stopLocked(); svc.mu.Unlock() })
	h := &HTTPHealth{URL: "http://" + svc.addr + "/v1/status", Token: fakeToken}
	a := &Applier{Layout: Layout{root}, Keys: keys, Policy: Policy{Arch: "arm64", Running: "devel"},
		Restart: svc.Restart, Health: h.Check, Deadline: 500 * time.Millisecond, Interval: 20 * time.Millisecond}
	b, _, err := Sign(priv, "1.0.0", "arm64", fakeBinary(t, "exit", "1.0.0"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.Apply(context.Background(), b)
	if err == nil || errors.Is(err, ErrRolledBack) || r.State.Phase != PhaseFailed {
		t.Fatalf("Apply = %+v, %v; want failed, not rolled back", r.State, err)
	}
	if st, _ := a.Layout.ReadState(); st.Phase != PhaseFailed || !strings.Contains(st.Reason, "no previous version") {
		t.Errorf("state file = %+v", st)
	}
}
