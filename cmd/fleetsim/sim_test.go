package main

import (
	"bytes"
	"context"
	"database/sql"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/sync/acquirer"
)

// startAcquirer serves acquirer.New on a SQLite store in dir over real HTTP on loopback, as
// acquirerd does (chain verification on, admission control at its defaults), and returns
// its URL and the store's DSN.
func startAcquirer(t *testing.T, dir string) (url, dsn string) {
	t.Helper()
	dsn = "sqlite:" + filepath.Join(dir, "acquirer.db")
	store, err := acquirer.Open(context.Background(), dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := httptest.NewServer(acquirer.New(store, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord}))
	t.Cleanup(srv.Close)
	return srv.URL, dsn
}

// TestFleet runs a small fleet (50 terminals × 40 records) through the real stack: the
// acquirer endpoint on SQLite over HTTP, each terminal's own journal and uplink. The
// acquirer must hold exactly 2,000 records, counted from its database.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of 50 journals: not under -short")
	}
	dir := t.TempDir()
	url, dsn := startAcquirer(t, dir)
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"--acquirer", url, "--db", dsn, "--terminals", "50", "--records", "40",
		"--prefix", "fleet-test", "--dir", filepath.Join(dir, "journals")}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("fleetsim exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "acquirer holds 2000 of 2000 records: 0 lost, 0 duplicated, 0 broken chains") {
		t.Errorf("report:\n%s", stdout.String())
	}
	if out := stdout.String(); !strings.Contains(out, "(inside acquirerd: p50 ") || strings.Contains(out, "inside acquirerd: p50 0.0ms") {
		t.Errorf("no batch latency from the acquirer's metrics in:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "progress: 2000/2000 records") {
		t.Errorf("no final progress line in:\n%s", stderr.String())
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "acquirer.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var records, terminals, pairs int
	if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT terminal), COUNT(DISTINCT terminal || '/' || sequence) FROM records WHERE terminal LIKE 'fleet-test-%'`).
		Scan(&records, &terminals, &pairs); err != nil {
		t.Fatal(err)
	}
	if got, want := [3]int{records, terminals, pairs}, [3]int{2000, 50, 2000}; got != want {
		t.Errorf("acquirer holds (records, terminals, distinct sequences) %v, want %v", got, want)
	}
}

// TestVerifyFindsMissingRecords: terminals provisioned and filled but never reconnected
// are reported lost, and the result is not OK (fleetsim exits 1).
func TestVerifyFindsMissingRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("journals and a store on disk: not under -short")
	}
	dir := t.TempDir()
	_, dsn := startAcquirer(t, dir)
	cfg := Config{Acquirer: "http://127.0.0.1:1", DB: dsn, Terminals: 3, Records: 5, Prefix: "lost", Dir: dir}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	store, err := acquirer.Open(t.Context(), dsn, "")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	terms, err := provision(t.Context(), store, cfg)
	for _, tm := range terms {
		if tm != nil {
			defer tm.journal.Close()
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	res := Result{Terminals: 3, Records: 5}
	if err := verify(t.Context(), store, cfg, terms, &res); err != nil {
		t.Fatal(err)
	}
	if got, want := [3]int{res.Stored, res.Lost, len(res.Broken)}, [3]int{0, 15, 3}; got != want {
		t.Errorf("(stored, lost, broken) = %v, want %v", got, want)
	}
	if res.OK() {
		t.Error("OK with nothing stored")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--acquirer", "http://127.0.0.1:1"},
		{"--acquirer", "http://127.0.0.1:1", "--db", "sqlite:x.db", "--terminals", "0"},
		{"--bogus"},
	} {
		var stdout, stderr bytes.Buffer
		if got := run(context.Background(), args, &stdout, &stderr); got != 2 {
			t.Errorf("fleetsim %q: exit %d, want 2 (stderr %q)", args, got, stderr.String())
		}
		if lines := strings.Count(stderr.String(), "\n"); lines != 2 || !strings.Contains(stderr.String(), "fleetsim --help") {
			t.Errorf("fleetsim %q: stderr %q, want one line and a hint", args, stderr.String())
		}
	}
}
