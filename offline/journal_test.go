package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

var cny, _ = posagent.LookupCurrency("CNY")

func testKey(t testing.TB) *Key {
	t.Helper()
	k, err := NewKey(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testPolicy() Policy {
	return Policy{
		Methods:  []posagent.Method{posagent.MethodEMVCPM, posagent.MethodWalletCode},
		Limits:   map[string]Limit{"CNY": {PerTransaction: 50000, Outstanding: 500000}},
		MaxCount: 1000,
		MaxAge:   72 * time.Hour,
	}
}

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, path string, opts Options) *Journal {
	t.Helper()
	if opts.Key == nil && !opts.ReadOnly {
		opts.Key = testKey(t)
	}
	j, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func sale(key string, minor int64, offline bool) NewSale {
	return NewSale{
		IdempotencyKey: key, Reference: "ORDER-" + key, Amount: posagent.Amount{Minor: minor, Currency: cny},
		Method: posagent.MethodWalletCode, Scheme: posagent.SchemeWeChatPay, Credential: "134567890123456789", Offline: offline,
	}
}

func mustAppend(t testing.TB, j *Journal, s NewSale) Record {
	t.Helper()
	r, created, err := j.Append(context.Background(), s)
	if err != nil {
		t.Fatalf("Append(%s): %v", s.IdempotencyKey, err)
	}
	if !created {
		t.Fatalf("Append(%s): not created", s.IdempotencyKey)
	}
	return r
}

func mustVerify(t testing.TB, j *Journal) VerifyReport {
	t.Helper()
	rep, err := j.Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.Broken != nil {
		t.Fatalf("Verify: %v", rep.Broken)
	}
	return rep
}

func TestJournal_AppendGet(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	j := openTest(t, path, Options{Terminal: "T1", Policy: testPolicy()})
	r1 := mustAppend(t, j, sale("k1", 1250, false))
	r2 := mustAppend(t, j, sale("k2", 300, true))
	if r1.Sequence != 1 || r2.Sequence != 2 {
		t.Errorf("sequences %d, %d, want 1, 2", r1.Sequence, r2.Sequence)
	}
	if r1.State != posagent.StateAuthorizing || r2.State != posagent.StateStored || !r2.Offline {
		t.Errorf("states %s, %s (offline %v)", r1.State, r2.State, r2.Offline)
	}
	if !bytes.Equal(r2.PrevHash, r1.Hash) || !bytes.Equal(r1.PrevHash, GenesisHash) {
		t.Error("records are not chained")
	}
	got, err := j.Get(ctx, r2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Amount != r2.Amount || got.IdempotencyKey != "k2" || got.Terminal != "T1" || got.CredentialMasked != "134567********6789" {
		t.Errorf("Get = %+v", got.Sale)
	}
	if len(got.History) != 1 || got.History[0].To != posagent.StateStored {
		t.Errorf("history %+v", got.History)
	}
	if c, err := j.Credential(ctx, r2.ID); err != nil || c != "134567890123456789" {
		t.Errorf("Credential = %q, %v", c, err)
	}
	if _, err := j.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(nope) = %v, want ErrNotFound", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, _ := os.ReadFile(path + "-wal")
	if bytes.Contains(append(raw, wal...), []byte("134567890123456789")) {
		t.Error("the credential is stored in clear")
	}
	mustVerify(t, j)
}

func TestJournal_Idempotency(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: testPolicy()})
	r := mustAppend(t, j, sale("k", 1250, true))
	again, created, err := j.Append(ctx, sale("k", 1250, true))
	if err != nil || created || again.ID != r.ID || again.Sequence != r.Sequence {
		t.Errorf("retry: created %v, id %s (want %s), err %v", created, again.ID, r.ID, err)
	}
	for name, s := range map[string]NewSale{
		"amount":     sale("k", 1251, true),
		"credential": func() NewSale { s := sale("k", 1250, true); s.Credential = "134567890123456780"; return s }(),
		"reference":  func() NewSale { s := sale("k", 1250, true); s.Reference = "X"; return s }(),
	} {
		_, _, err := j.Append(ctx, s)
		var ce *ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) {
			t.Errorf("%s differs: err %v, want ConflictError", name, err)
		}
	}
	st, _ := j.Stats(ctx)
	if st.Records != 1 || st.LastSeq != 1 {
		t.Errorf("records %d, last seq %d after retries, want 1, 1", st.Records, st.LastSeq)
	}
	mustVerify(t, j)
}

func TestJournal_Transitions(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: testPolicy()})
	on := mustAppend(t, j, sale("on", 100, false))
	off := mustAppend(t, j, sale("off", 100, true))
	if _, err := j.Transition(ctx, on.ID, posagent.StateUploading, ""); !errors.Is(err, posagent.ErrTransition) {
		t.Errorf("authorizing → uploading: %v, want ErrTransition", err)
	}
	r, err := j.Transition(ctx, on.ID, posagent.StateDeclined, "insufficient funds")
	if err != nil || r.State != posagent.StateDeclined || r.LastError != "insufficient funds" {
		t.Fatalf("decline: %+v, %v", r.Sale, err)
	}
	if _, err := j.Transition(ctx, on.ID, posagent.StateApproved, ""); !errors.Is(err, posagent.ErrTransition) {
		t.Errorf("declined → approved: %v, want ErrTransition", err)
	}
	pend, err := j.Pending(ctx, 10)
	if err != nil || len(pend) != 2 || pend[0].Sequence != 1 || pend[1].Sequence != 2 {
		t.Fatalf("Pending = %d records, %v", len(pend), err)
	}
	if err := j.MarkUploading(ctx, on.ID, off.ID); err != nil {
		t.Fatal(err)
	}
	got, _ := j.Get(ctx, off.ID)
	if got.State != posagent.StateUploading || got.Attempts != 1 || len(got.History) != 2 {
		t.Errorf("after MarkUploading: %s, attempts %d, history %d", got.State, got.Attempts, len(got.History))
	}
	if err := j.Ack(ctx, on.ID, off.ID); err != nil {
		t.Fatal(err)
	}
	if pend, _ := j.Pending(ctx, 10); len(pend) != 0 {
		t.Errorf("Pending after Ack = %d records", len(pend))
	}
	if _, err := j.Transition(ctx, off.ID, posagent.StateApproved, "deferred authorization"); err != nil {
		t.Fatal(err)
	}
	if err := j.Ack(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Ack(missing) = %v", err)
	}
	mustVerify(t, j)
}

func TestJournal_FallbackToStoredChecksPolicy(t *testing.T) {
	ctx := context.Background()
	p := testPolicy()
	p.Limits["CNY"] = Limit{PerTransaction: 1000, Outstanding: 1000}
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: p})
	a := mustAppend(t, j, sale("a", 800, false))
	b := mustAppend(t, j, sale("b", 800, false))
	if _, err := j.Transition(ctx, a.ID, posagent.StateStored, "acquirer timeout"); err != nil {
		t.Fatal(err)
	}
	_, err := j.Transition(ctx, b.ID, posagent.StateStored, "acquirer timeout")
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Code != RefuseOutstanding {
		t.Fatalf("second fallback: %v, want outstanding refusal", err)
	}
	if got, want := err.Error(), "offline limit reached: 8.00 of 10.00 CNY outstanding"; got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if r, _ := j.Get(ctx, b.ID); r.State != posagent.StateAuthorizing {
		t.Errorf("refused record moved to %s", r.State)
	}
}

func TestJournal_PolicyInAppend(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: testPolicy()})
	for i := range 9 {
		mustAppend(t, j, sale(fmt.Sprint("s", i), 50000, true))
	}
	mustAppend(t, j, sale("s9", 49500, true))
	_, _, err := j.Append(ctx, sale("over", 600, true))
	if got, want := fmt.Sprint(err), "offline limit reached: 4,995.00 of 5,000.00 CNY outstanding"; got != want {
		t.Errorf("err %q, want %q", got, want)
	}
	if !errors.Is(err, ErrPolicy) {
		t.Errorf("not ErrPolicy: %v", err)
	}
	// Online sales are not limited by the offline policy, and the refused sale took no
	// sequence number.
	r := mustAppend(t, j, sale("online", 600, false))
	if r.Sequence != 11 {
		t.Errorf("sequence %d, want 11", r.Sequence)
	}
	mustVerify(t, j)
}

func TestJournal_Concurrent(t *testing.T) {
	ctx := context.Background()
	p := testPolicy()
	p.Limits["CNY"] = Limit{PerTransaction: 100, Outstanding: 100 * 30}
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: p})
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, refused := 0, 0
	for g := range 4 {
		wg.Go(func() {
			for i := range 20 {
				_, _, err := j.Append(ctx, sale(fmt.Sprintf("g%d-%d", g, i), 100, true))
				mu.Lock()
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, ErrPolicy):
					refused++
				default:
					t.Error(err)
				}
				mu.Unlock()
				j.List(ctx, Filter{Limit: 5})
			}
		})
	}
	wg.Wait()
	if accepted != 30 || refused != 50 {
		t.Errorf("accepted %d, refused %d; want 30, 50 (the limit must hold under concurrency)", accepted, refused)
	}
	rep := mustVerify(t, j)
	if rep.Records != 30 || rep.LastSeq != 30 {
		t.Errorf("verify: %d records, last %d", rep.Records, rep.LastSeq)
	}
}

func TestJournal_Overdue(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: testPolicy(), Now: clk.Now})
	old := mustAppend(t, j, sale("old", 100, true))
	clk.Add(73 * time.Hour)
	_, _, err := j.Append(ctx, sale("new", 100, true))
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Code != RefuseAge {
		t.Fatalf("append with an overdue record: %v", err)
	}
	if !strings.Contains(err.Error(), "73h") {
		t.Errorf("message %q does not say how old", err)
	}
	r, _ := j.Get(ctx, old.ID)
	if !r.Overdue {
		t.Error("old record not flagged overdue")
	}
	st, _ := j.Stats(ctx)
	if st.Overdue != 1 || st.Outstanding.Count != 1 {
		t.Errorf("stats overdue %d, outstanding %d", st.Overdue, st.Outstanding.Count)
	}
}

func TestJournal_PurgeKeepsChain(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "j.db")
	j := openTest(t, path, Options{Policy: testPolicy(), Now: clk.Now, Retention: 24 * time.Hour})
	var recs []Record
	for i := range 10 {
		recs = append(recs, mustAppend(t, j, sale(fmt.Sprint("p", i), 100, i%2 == 0)))
	}
	// 1..6 settled and acknowledged; 7 settled but not acknowledged; the rest open.
	for _, r := range recs[:7] {
		to := posagent.StateApproved
		if r.State == posagent.StateStored {
			if err := j.MarkUploading(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := j.Transition(ctx, r.ID, to, ""); err != nil {
			t.Fatal(err)
		}
	}
	ids := []string{}
	for _, r := range recs[:6] {
		ids = append(ids, r.ID)
	}
	if err := j.Ack(ctx, ids...); err != nil {
		t.Fatal(err)
	}
	if n, err := j.Purge(ctx, clk.Now()); err != nil || n != 0 {
		t.Errorf("purge within retention removed %d, %v", n, err)
	}
	clk.Add(25 * time.Hour)
	n, err := j.Purge(ctx, clk.Now())
	if err != nil || n != 6 {
		t.Fatalf("purge removed %d, %v; want 6", n, err)
	}
	rep := mustVerify(t, j)
	if rep.Anchor == nil || rep.Anchor.Sequence != 6 || rep.FirstSeq != 7 || rep.Records != 4 {
		t.Errorf("after purge: %+v", rep)
	}
	r := mustAppend(t, j, sale("after", 100, false))
	if r.Sequence != 11 {
		t.Errorf("sequence after purge %d, want 11", r.Sequence)
	}
	// Purge everything: the chain continues from the anchor.
	for _, r := range append(recs[7:], r) {
		if r.State == posagent.StateStored {
			j.MarkUploading(ctx, r.ID)
		}
		j.Transition(ctx, r.ID, posagent.StateApproved, "")
		j.Ack(ctx, r.ID)
	}
	j.Ack(ctx, recs[6].ID)
	clk.Add(25 * time.Hour)
	if n, err := j.Purge(ctx, clk.Now()); err != nil || n != 5 {
		t.Fatalf("second purge removed %d, %v", n, err)
	}
	r = mustAppend(t, j, sale("last", 100, false))
	if r.Sequence != 12 {
		t.Errorf("sequence %d, want 12", r.Sequence)
	}
	rep = mustVerify(t, j)
	if rep.Anchor.Sequence != 11 || rep.Records != 1 {
		t.Errorf("after second purge: %+v", rep)
	}
}

func TestJournal_VerifyDetectsTampering(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, sql, want string
	}{
		{"amount", "UPDATE sales SET amount = 1 WHERE seq = 3", "sequence 3"},
		{"removed", "DELETE FROM sales WHERE seq = 2", "sequence gap"},
		{"removed last", "DELETE FROM sales WHERE seq = 5", "counter"},
		{"relinked", "UPDATE sales SET prev_hash = zeroblob(32) WHERE seq = 4", "prev_hash"},
		{"mac", "UPDATE sales SET mac = zeroblob(32) WHERE seq = 2", "hmac"},
		{"credential swapped", "UPDATE sales SET credential = (SELECT credential FROM sales WHERE seq = 1) WHERE seq = 2", "decrypt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "j.db")
			j := openTest(t, path, Options{Policy: testPolicy()})
			for i := range 5 {
				mustAppend(t, j, sale(fmt.Sprint("v", i), 100, false))
			}
			if _, err := j.w.ExecContext(ctx, tt.sql); err != nil {
				t.Fatal(err)
			}
			rep, err := j.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Broken == nil || !strings.Contains(rep.Broken.Error(), tt.want) {
				t.Errorf("Broken = %v, want mention of %q", rep.Broken, tt.want)
			}
		})
	}
}

func TestOpen_ReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Error("read-only open of a missing journal succeeded")
	}
	w := openTest(t, path, Options{Terminal: "T9", Policy: testPolicy()})
	mustAppend(t, w, sale("a", 100, true))
	r := openTest(t, path, Options{ReadOnly: true})
	if r.Terminal() != "T9" {
		t.Errorf("terminal %q", r.Terminal())
	}
	if _, _, err := r.Append(ctx, sale("b", 100, true)); !errors.Is(err, ErrNoKey) {
		t.Errorf("append without key: %v", err)
	}
	rep := mustVerify(t, r)
	if rep.MACChecked || rep.Records != 1 {
		t.Errorf("read-only verify %+v", rep)
	}
	if _, err := Open(path, Options{Terminal: "OTHER", Key: testKey(t)}); err == nil {
		t.Error("opened another terminal's journal")
	}
}

func TestOpen_MigrationsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	for range 3 {
		j := openTest(t, path, Options{})
		var v int
		j.w.QueryRow("PRAGMA user_version").Scan(&v)
		ms, _ := migrations()
		if v != len(ms) {
			t.Errorf("user_version %d, want %d", v, len(ms))
		}
		j.Close()
	}
}

func TestOpen_Corrupt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "j.db")
	j := openTest(t, path, Options{Policy: testPolicy()})
	for i := range 200 {
		mustAppend(t, j, sale(fmt.Sprint("c", i), 100, false))
	}
	j.Checkpoint(ctx)
	j.Close()
	// Damage pages in the middle of the file.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := bytes.Repeat([]byte{0xA5}, 4096*3)
	f.WriteAt(junk, fi.Size()/2/4096*4096)
	f.Close()
	damaged, _ := os.ReadFile(path)

	_, err = Open(path, Options{Key: testKey(t), Policy: testPolicy()})
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.MovedTo == "" {
		t.Fatalf("Open of a damaged journal: %v", err)
	}
	moved, err := os.ReadFile(ce.MovedTo)
	if err != nil || !bytes.Equal(moved, damaged) {
		t.Errorf("the damaged file was not moved aside intact (%v)", err)
	}
	j2 := openTest(t, path, Options{Policy: testPolicy()})
	if j2.Hold() == "" {
		t.Fatal("the fresh journal does not hold offline sales")
	}
	// It must first continue the chain the acquirer holds (here: up to the damaged
	// journal's sequence 40): no record before that, so no sequence collides.
	if _, _, err := j2.Append(ctx, sale("on", 100, false)); !errors.Is(err, ErrRebase) {
		t.Fatalf("append before the rebase: %v, want ErrRebase", err)
	}
	head := bytes.Repeat([]byte{0xAB}, 32)
	if err := j2.Rebase(ctx, 40, head); err != nil {
		t.Fatal(err)
	}
	if _, _, err := j2.Append(ctx, sale("off", 100, true)); !errors.Is(err, ErrHeld) {
		t.Errorf("offline sale on a held journal: %v", err)
	}
	on := mustAppend(t, j2, sale("on", 100, false)) // online sales go on
	if got, want := on.Sequence, uint64(41); got != want || !bytes.Equal(on.PrevHash, head) {
		t.Errorf("first record after the rebase: sequence %d (want %d), prev_hash %x", got, want, on.PrevHash)
	}
	if rep, err := j2.Verify(ctx); err != nil || rep.Broken != nil || rep.Records != 1 {
		t.Errorf("verify after the rebase: %+v %v", rep, err)
	}
	if err := j2.Rebase(ctx, 50, head); err == nil {
		t.Error("a second rebase of a journal with records was accepted")
	}
	if err := j2.Release(ctx, "checked by technician 42"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j2, sale("off", 100, true))
	j2.Close()
	j3 := openTest(t, path, Options{Policy: testPolicy()})
	if j3.Hold() != "" {
		t.Error("release did not persist")
	}
}

func TestOpen_NotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	os.WriteFile(path, bytes.Repeat([]byte("not sqlite "), 1000), 0o600)
	_, err := Open(path, Options{ReadOnly: true})
	if !errors.Is(err, ErrNotJournal) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only open: %v, want ErrNotJournal (the wrong file, not a damaged journal)", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Error("read-only open moved the file")
	}
	_, err = Open(path, Options{})
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.MovedTo == "" {
		t.Fatalf("open: %v", err)
	}
	if !strings.HasPrefix(filepath.Base(ce.MovedTo), "j.db.corrupt-") {
		t.Errorf("moved to %s", ce.MovedTo)
	}
}

// TestOpen_ReadOnlyNotAJournal: a SQLite database without the journal's schema is not a
// journal, and a read-only open leaves it as it was.
func TestOpen_ReadOnlyNotAJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNotJournal) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("read-only open: %v, want ErrNotJournal", err)
	}
}

// TestJournal_VerifyWrongKey: a key that authenticates no record is ErrWrongKey; one
// altered record under the right key is still a broken link.
func TestJournal_VerifyWrongKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	j := openTest(t, path, Options{Policy: testPolicy()})
	mustAppend(t, j, sale("a", 100, false))
	mustAppend(t, j, sale("b", 200, false))
	j.Close()
	other, err := LoadKey(filepath.Join(t.TempDir(), "other.key"), true)
	if err != nil {
		t.Fatal(err)
	}
	r := openTest(t, path, Options{ReadOnly: true, Key: other})
	rep, err := r.Verify(context.Background())
	if !errors.Is(err, ErrWrongKey) || rep.Broken != nil {
		t.Fatalf("verify with another key: %+v %v, want ErrWrongKey", rep, err)
	}
}

func TestJournal_IntegrityCheck(t *testing.T) {
	j := openTest(t, filepath.Join(t.TempDir(), "j.db"), Options{Policy: testPolicy()})
	mustAppend(t, j, sale("a", 100, false))
	if err := j.IntegrityCheck(context.Background()); err != nil {
		t.Error(err)
	}
}

func TestOpen_FileModes(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, filepath.Join(dir, "journal.db"), Options{})
	if _, _, err := j.Append(context.Background(), sale("k-mode", 100, false)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"journal.db", "journal.db-wal", "journal.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: mode %o, want 600", name, got)
		}
	}
}
