package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"
	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
)

// queueJournal makes a journal with a few records and returns its path and key file.
func queueJournal(t *testing.T) (journal, keyFile string, ids []string) {
	t.Helper()
	dir := t.TempDir()
	journal, keyFile = filepath.Join(dir, "journal.db"), filepath.Join(dir, "key")
	key, err := offline.LoadKey(keyFile, true)
	if err != nil {
		t.Fatal(err)
	}
	cny, _ := posagent.LookupCurrency("CNY")
	j, err := offline.Open(journal, offline.Options{Key: key, Terminal: "T1", Policy: offline.Policy{
		Methods: []posagent.Method{posagent.MethodWalletCode}, MaxCount: 10,
		Limits: map[string]offline.Limit{"CNY": {PerTransaction: 1000000, Outstanding: 10000000}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	for i := range 5 {
		r, _, err := j.Append(ctx, offline.NewSale{
			IdempotencyKey: fmt.Sprint("key-", i), Reference: fmt.Sprint("ORDER-", i),
			Amount: posagent.Amount{Minor: int64(123456 + i), Currency: cny}, Method: posagent.MethodWalletCode,
			Scheme: posagent.SchemeAlipay, Credential: "281234567890123456", Offline: i%2 == 0,
		})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if _, err := j.Transition(ctx, ids[1], posagent.StateApproved, ""); err != nil {
		t.Fatal(err)
	}
	return journal, keyFile, ids
}

func TestQueue_Ls(t *testing.T) {
	journal, _, ids := queueJournal(t)
	code, out, stderr := run(t, "", "queue", "ls", "--journal", journal)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "SEQ") || !strings.Contains(lines[1], ids[0]) {
		t.Fatalf("ls:\n%s", out)
	}
	if !strings.Contains(lines[1], "1,234.56 CNY") || !strings.Contains(lines[1], "281234********3456") {
		t.Errorf("amount or masked credential missing: %s", lines[1])
	}
	code, out, _ = run(t, "", "queue", "ls", "--journal", journal, "--state", "stored", "--json")
	var recs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 3 {
		t.Fatalf("ls --state stored --json: exit %d\n%s", code, out)
	}
	if code, _, stderr := run(t, "", "queue", "ls", "--journal", journal, "--state", "lost"); code != 2 || !strings.Contains(stderr, "unknown state") {
		t.Errorf("bad state: exit %d, %s", code, stderr)
	}
}

func TestQueue_Show(t *testing.T) {
	journal, _, ids := queueJournal(t)
	for _, arg := range []string{ids[1], "2"} {
		code, out, stderr := run(t, "", "queue", "show", "--journal", journal, arg)
		if code != 0 {
			t.Fatalf("show %s: exit %d: %s", arg, code, stderr)
		}
		var v struct {
			ID         string `json:"id"`
			State      string `json:"state"`
			Credential string `json:"credential"`
			History    []struct{ To string }
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatal(err)
		}
		if v.ID != ids[1] || v.State != "approved" || len(v.History) != 2 || v.Credential != "281234********3456" {
			t.Errorf("show %s: %+v", arg, v)
		}
		if strings.Contains(out, "281234567890123456") {
			t.Error("show prints the credential in clear")
		}
	}
	code, _, stderr := run(t, "", "queue", "show", "--journal", journal, "nope")
	if code != 1 || !strings.Contains(stderr, `no record "nope"`) {
		t.Errorf("show nope: exit %d, %s", code, stderr)
	}
}

func TestQueue_Stats(t *testing.T) {
	journal, _, _ := queueJournal(t)
	code, out, stderr := run(t, "", "queue", "stats", "--journal", journal)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var st struct {
		Records     int            `json:"records"`
		ByState     map[string]int `json:"by_state"`
		Terminal    string         `json:"terminal"`
		LastSeq     uint64         `json:"last_sequence"`
		Outstanding struct {
			Count   int               `json:"count"`
			Amounts map[string]string `json:"amounts"`
		} `json:"outstanding"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	if st.Records != 5 || st.ByState["stored"] != 3 || st.Terminal != "T1" || st.LastSeq != 5 ||
		st.Outstanding.Count != 3 || st.Outstanding.Amounts["CNY"] != "3703.74" {
		t.Errorf("stats %+v", st)
	}
}

func TestQueue_Export(t *testing.T) {
	journal, _, ids := queueJournal(t)
	code, out, stderr := run(t, "", "queue", "export", "--journal", journal)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines", len(lines))
	}
	for i, l := range lines {
		var v struct {
			ID       string `json:"id"`
			Sequence uint64 `json:"sequence"`
			Hash     string `json:"hash"`
			PrevHash string `json:"prev_hash"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.ID != ids[i] || v.Sequence != uint64(i+1) || len(v.Hash) != 64 {
			t.Errorf("line %d: %s (%v)", i, l, err)
		}
	}
	file := filepath.Join(t.TempDir(), "out.csv")
	code, _, stderr = run(t, "", "queue", "export", "--journal", journal, "--format", "csv", "--out", file)
	if code != 0 || !strings.Contains(stderr, "exported 5 records") {
		t.Fatalf("csv: exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(file)
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 6 || rows[0][0] != "sequence" || rows[1][1] != ids[0] {
		t.Errorf("csv: %v\n%s", err, b)
	}
	if bytes.Contains(b, []byte("281234567890123456")) {
		t.Error("export holds the credential in clear")
	}
	if code, _, _ := run(t, "", "queue", "export", "--journal", journal, "--format", "xml"); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
}

func TestQueue_Verify(t *testing.T) {
	journal, keyFile, _ := queueJournal(t)
	code, out, stderr := run(t, "", "queue", "verify", "--journal", journal, "--key-file", keyFile)
	if code != 0 || !strings.Contains(out, "chain: ok, 5 records (sequences 1..5)") || !strings.Contains(out, "hmac checked") ||
		!strings.Contains(out, "integrity: ok") {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run(t, "", "queue", "verify", "--journal", journal)
	if code != 0 || !strings.Contains(out, "hmac not checked") {
		t.Errorf("without key: exit %d\n%s", code, out)
	}
	// Another terminal's key: the HMACs do not match.
	other := filepath.Join(t.TempDir(), "other")
	os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600)
	code, out, stderr = run(t, "", "queue", "verify", "--journal", journal, "--key-file", other)
	if code != 1 || !strings.Contains(stderr, "key does not match the journal") || !strings.Contains(stderr, "--key-file") ||
		strings.Contains(stderr, "support") || strings.Contains(out, "BROKEN") {
		t.Errorf("wrong key: exit %d\n%s%s", code, out, stderr)
	}
	os.Chmod(keyFile, 0o644)
	code, _, stderr = run(t, "", "queue", "verify", "--journal", journal, "--key-file", keyFile)
	if code != 1 || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("world-readable key: exit %d, %s", code, stderr)
	}
}

// TestQueue_NotAJournal: a file that is not a journal is reported as such, not as a damaged
// journal, and is left as it was.
func TestQueue_NotAJournal(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a database\n"), 0o600)
	other := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite3", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, path := range []string{text, other} {
		for _, cmd := range []string{"stats", "ls", "verify"} {
			code, _, stderr := run(t, "", "queue", cmd, "--journal", path)
			if code != 1 || !strings.Contains(stderr, "not a posagent journal") || strings.Contains(stderr, "damaged") ||
				strings.Contains(stderr, "support") {
				t.Errorf("%s %s: exit %d, %s", cmd, filepath.Base(path), code, stderr)
			}
		}
	}
	if b, _ := os.ReadFile(text); string(b) != "not a database\n" {
		t.Errorf("the file was changed: %q", b)
	}
}

func TestQueue_MissingJournal(t *testing.T) {
	t.Setenv("POSAGENT_JOURNAL", filepath.Join(t.TempDir(), "none.db"))
	code, _, stderr := run(t, "", "queue", "stats")
	if code != 1 || !strings.Contains(stderr, "--journal") {
		t.Errorf("exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(os.Getenv("POSAGENT_JOURNAL")); err == nil {
		t.Error("a read command created the journal")
	}
}

func TestQueue_Release(t *testing.T) {
	journal, _, _ := queueJournal(t)
	code, out, _ := run(t, "", "queue", "release", "--journal", journal, "--note", "tech 7")
	if code != 0 || !strings.Contains(out, "not held") {
		t.Errorf("exit %d: %s", code, out)
	}
	if code, _, _ := run(t, "", "queue", "release", "--journal", journal); code != 2 {
		t.Errorf("release without note: exit %d", code)
	}
}

// TestQueue_FromConfig: without --journal, the queue commands use the journal and key file
// of the agent's config, as 'posagent provision' wrote it.
func TestQueue_FromConfig(t *testing.T) {
	journal, keyFile, _ := queueJournal(t)
	cfg := filepath.Join(t.TempDir(), "posagent.yaml")
	yaml := fmt.Sprintf("terminal: \"T1\"\nstate_dir: %q\nkey_file: %q\nacquirer:\n  url: \"http://127.0.0.1:9\"\n", filepath.Dir(journal), keyFile)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// The token is in the env file beside it, as provision writes it for systemd.
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "env"), []byte("POSAGENT_API_TOKEN=0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "", "queue", "verify", "--config", cfg)
	if code != 0 || !strings.Contains(out, "chain: ok, 5 records") || !strings.Contains(out, "hmac checked") {
		t.Fatalf("queue verify --config: exit %d\n%s%s", code, out, stderr)
	}
	// --journal still wins over the config.
	code, _, stderr = run(t, "", "queue", "ls", "--config", cfg, "--journal", filepath.Join(t.TempDir(), "none.db"))
	if code == 0 || !strings.Contains(stderr, "--journal") {
		t.Fatalf("queue ls --journal missing: exit %d %s", code, stderr)
	}
	// A config that does not load is named, with a hint.
	os.WriteFile(cfg, []byte("terminal: [\n"), 0o644)
	code, _, stderr = run(t, "", "queue", "ls", "--config", cfg)
	if code == 0 || !strings.Contains(stderr, "fix the config") {
		t.Fatalf("queue ls with a broken config: exit %d %s", code, stderr)
	}
}
