package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
