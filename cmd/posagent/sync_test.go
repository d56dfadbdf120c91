package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// TestSync_Once pushes a journal to a real acquirer endpoint (on loopback, chain checked)
// and prints the decline and the summary.
func TestSync_Once(t *testing.T) {
	journal, keyFile, _ := queueJournal(t)
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := offline.LoadKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	j, err := offline.Open(journal, offline.Options{Key: key, Policy: offline.Policy{
		Methods: []posagent.Method{posagent.MethodWalletCode}, MaxCount: 10,
		Limits: map[string]offline.Limit{"CNY": {PerTransaction: 1000000, Outstanding: 10000000}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cny, _ := posagent.LookupCurrency("CNY")
	if _, _, err := j.Append(context.Background(), offline.NewSale{IdempotencyKey: "declined-later", Reference: "ORDER-D",
		Amount: posagent.Amount{Minor: 1261, Currency: cny}, Method: posagent.MethodWalletCode, Credential: "281234567890123456", Offline: true}); err != nil {
		t.Fatal(err)
	}
	j.Close()

	store, err := acquirer.OpenSQLite(filepath.Join(t.TempDir(), "acq.db"), bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.AddTerminal(context.Background(), "T1", secret, wire.Policy{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(acquirer.New(store, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord}))
	defer srv.Close()

	code, out, stderr := run(t, "", "sync", "--once", "--journal", journal, "--key-file", keyFile, "--acquirer", srv.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}
	// Records: 3 offline and 1 approved online from queueJournal, the declined one; the
	// sale still authorizing is not sent.
	for _, want := range []string{"DECLINED  sequence 6  12.61 CNY  ORDER-D: declined by the issuer",
		"sent 5 record(s): 5 accepted, 0 duplicate, 0 rejected; settled 4: 3 approved, 1 declined; acquirer holds up to sequence 3 (missing 1 run(s), first 4-4); 0 left"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// A provisioned terminal: everything from the config and the env file beside it.
	cfg := filepath.Join(t.TempDir(), "posagent.yaml")
	os.WriteFile(cfg, fmt.Appendf(nil, "terminal: T1\nstate_dir: %q\nkey_file: %q\nacquirer:\n  url: %q\n", filepath.Dir(journal), keyFile, srv.URL), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(cfg), "env"), []byte("POSAGENT_API_TOKEN=0123456789abcdef0123\n"), 0o600)
	code, out, stderr = run(t, "", "sync", "--once", "--config", cfg)
	if code != 0 || !strings.Contains(out, "sent 0 record(s)") {
		t.Fatalf("second sync, from the config: exit %d %s%s", code, out, stderr)
	}
}

func TestSync_Errors(t *testing.T) {
	journal, keyFile, _ := queueJournal(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no acquirer", []string{"sync", "--once", "--journal", journal, "--key-file", keyFile, "--acquirer", ""}, 2, "hint: the acquirer's URL is acquirer.url"},
		{"no key", []string{"sync", "--once", "--journal", journal, "--key-file", "", "--acquirer", "http://127.0.0.1:1"}, 2, "hint: on a terminal it is /etc/posagent/key"},
		{"bad URL", []string{"sync", "--once", "--journal", journal, "--key-file", keyFile, "--acquirer", "ftp://x"}, 2, "must be http"},
		{"other terminal", []string{"sync", "--once", "--journal", journal, "--key-file", keyFile, "--acquirer", "http://127.0.0.1:1", "--terminal", "T9"}, 1, "belongs to terminal"},
		{"no journal", []string{"sync", "--once", "--journal", journal + ".nope", "--key-file", keyFile, "--acquirer", "http://127.0.0.1:1"}, 1, "open journal"},
		{"unreachable", []string{"sync", "--once", "--journal", journal, "--key-file", keyFile, "--acquirer", "http://127.0.0.1:1", "--timeout", "200ms"}, 1, "sync: upload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one line", code, stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
}
