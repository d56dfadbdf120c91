package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_DBRefused: an empty sqlite: path and a file that is not a database are refused
// before anything is written (no master key file, the file untouched).
func TestRun_DBRefused(t *testing.T) {
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notDB, []byte("not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"empty path", []string{"terminals", "add", "T1", "--db", "sqlite:"}, 2, "needs a path"},
		{"empty path serve", []string{"--listen", "127.0.0.1:0", "--db", "sqlite:"}, 2, "needs a path"},
		{"not a database", []string{"terminals", "add", "T1", "--db", "sqlite:" + notDB}, 1, "is not a SQLite database"},
		{"not a database ledger", []string{"ledger", "--db", "sqlite:" + notDB}, 1, "is not a SQLite database"},
		{"directory", []string{"terminals", "add", "T1", "--db", "sqlite:" + dir}, 1, "is a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errOut)
			if code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
	got, err := os.ReadFile(notDB)
	if err != nil || string(got) != "not a database\n" {
		t.Errorf("the file was changed: %q, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files written beside it: %v", entries)
	}
	if _, err := os.Stat(".key"); err == nil {
		t.Error("a master key .key was written for the empty path")
	}
}

func TestRun_Version(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "acquirerd ") {
		t.Fatalf("--version: exit %d, %q %q", code, out.String(), errOut.String())
	}
}
