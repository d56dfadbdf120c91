package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/posagent/posagent/internal/testio"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer/acquirertest"
	"github.com/posagent/posagent/sync/uplink"
)

func TestRun_TerminalsAdd(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "a.db")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"terminals", "add", "T1", "--db", db}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	secret := lines[len(lines)-1]
	if len(secret) != 64 {
		t.Fatalf("secret line %q", secret)
	}
	// The secret is a posagent key file: the terminal derives from it the key the
	// acquirer verifies its signatures with.
	keyFile := filepath.Join(dir, "terminal.key")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := offline.LoadKey(keyFile, false)
	if err != nil {
		t.Fatalf("the printed secret is not a key file: %v", err)
	}
	store, err := openStore(context.Background(), db, "")
	if err != nil {
		t.Fatal(err)
	}
	signing, err := store.Secret(context.Background(), "T1")
	store.Close()
	if err != nil || !bytes.Equal(signing, key.SigningKey()) {
		t.Fatalf("the acquirer's signing key for T1 is not the one the terminal derives (%v)", err)
	}
	fi, err := os.Stat(filepath.Join(dir, "a.db.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("master key: %v %v", fi, err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "a.db"))
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the secret is stored in clear in the database")
	}
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"terminals", "add", "T1", "--db", db}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "already exists") {
		t.Fatalf("duplicate: exit %d %q", code, errOut.String())
	}
}

func TestRun_Usage(t *testing.T) {
	for _, args := range [][]string{{}, {"--listen", "127.0.0.1:0"}, {"--bogus"}, {"terminals", "add"}, {"--listen", "x", "--db", "mysql://x"}, {"--listen", "x", "--db", "sqlite:x", "--tls-cert", "c.pem"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

// addTerminal registers id with run and returns the terminal's key, as its key file holds it.
func addTerminal(t *testing.T, id string, args ...string) *offline.Key {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), append([]string{"terminals", "add", id}, args...), &out, &errOut); code != 0 {
		t.Fatalf("terminals add: exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	keyFile := filepath.Join(t.TempDir(), "terminal.key")
	if err := os.WriteFile(keyFile, []byte(lines[len(lines)-1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := offline.LoadKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// serve starts run with args in the background and returns the URL it listens on.
func serve(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testio.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{"--listen", "127.0.0.1:0"}, args...), &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("acquirerd exit %d: %s", code, errOut.String())
		}
	})
	re := regexp.MustCompile(`listening on (\S+)`)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("acquirerd exit %d: %s", code, errOut.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("acquirerd did not start: %s %s", out.String(), errOut.String())
	return ""
}

// TestRun_MutualTLS: acquirerd with --tls-cert, --tls-key and --client-ca serves HTTPS and
// lets a terminal in only with its own certificate.
func TestRun_MutualTLS(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "a.db")
	key := addTerminal(t, "T1", "--db", db)
	pki := acquirertest.NewPKI(t, "acquirer")
	cert, certKey := pki.Server("acquirerd")
	url := serve(t, "--db", db, "--tls-cert", cert, "--tls-key", certKey, "--client-ca", pki.CAFile)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("listening on %s, want https", url)
	}
	for _, tt := range []struct {
		cn   string
		want int // 0: accepted
	}{{"T1", 0}, {"T2", 403}} {
		c, err := uplink.New(url, "T1", key)
		if err != nil {
			t.Fatal(err)
		}
		c.MaxAttempts = 1
		cf, kf := pki.Client(tt.cn)
		if err := c.SetTLS(uplink.TLSOptions{CAFile: pki.CAFile, CertFile: cf, KeyFile: kf}); err != nil {
			t.Fatal(err)
		}
		_, err = c.Ping(t.Context())
		var ae *uplink.APIError
		switch {
		case tt.want == 0 && err != nil:
			t.Errorf("certificate %s: %v", tt.cn, err)
		case tt.want != 0 && (!errors.As(err, &ae) || ae.Status != tt.want):
			t.Errorf("certificate %s: %v, want %d", tt.cn, err, tt.want)
		}
	}
	resp, err := http.Get("http://" + strings.TrimPrefix(url, "https://") + "/v1/ping")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP: %d, want 400", resp.StatusCode)
		}
	}
}

// TestRun_Postgres: --db postgres://… registers terminals in PostgreSQL and serves from it;
// it needs --master-key-file, and two "nodes" share the database.
func TestRun_Postgres(t *testing.T) {
	dsn := acquirertest.PostgresDSN(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"terminals", "add", "T1", "--db", dsn}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), "--master-key-file") {
		t.Fatalf("without a master key: exit %d %q", code, errOut.String())
	}
	key := addTerminal(t, "T1", "--db", dsn, "--master-key-file", keyFile)
	for _, url := range []string{serve(t, "--db", dsn, "--master-key-file", keyFile), serve(t, "--db", dsn, "--master-key-file", keyFile)} {
		c, err := uplink.New(url, "T1", key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Ping(t.Context()); err != nil {
			t.Fatalf("node %s: %v", url, err)
		}
	}
	other := filepath.Join(t.TempDir(), "other.key")
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"terminals", "add", "T2", "--db", dsn, "--master-key-file", other}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "master key") {
		t.Fatalf("another master key: exit %d %q", code, errOut.String())
	}
}
