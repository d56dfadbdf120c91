package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/offline"
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
	store, err := openStore(db, "")
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
	for _, args := range [][]string{{}, {"--listen", "127.0.0.1:0"}, {"--bogus"}, {"terminals", "add"}, {"--listen", "x", "--db", "mysql://x"}} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}
