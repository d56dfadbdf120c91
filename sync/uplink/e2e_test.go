package uplink

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// TestSyncer_EndToEnd: journal → uplink → acquirer → results back, on loopback.
func TestSyncer_EndToEnd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const n = 250
	t0 := time.Now()
	e.fill(n)
	t.Logf("journaled %d sales in %s", n, time.Since(t0))
	// An online sale, approved at the counter: uploaded for the chain, not decided again.
	online, _, err := e.journal.Append(ctx, offline.NewSale{IdempotencyKey: "online-1", Amount: posagent.Amount{Minor: 1234, Currency: cny},
		Method: posagent.MethodWalletCode, Credential: "134567890123456789"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.journal.Transition(ctx, online.ID, posagent.StateApproved, "approved online"); err != nil {
		t.Fatal(err)
	}
	c := e.client(e.serve(nil))
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	s := e.syncer(c)
	s.BatchSize = 40
	var declined []Outcome
	s.OnOutcome = func(o Outcome) {
		if o.Decision == "declined" {
			declined = append(declined, o)
		}
	}
	var progress []Progress
	s.OnProgress = func(p Progress) { progress = append(progress, p) }
	rep, err := s.Once(ctx)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if got, want := rep.Accepted, n+1; got != want || rep.Duplicate != 0 || len(rep.Rejected) != 0 {
		t.Fatalf("accepted %d duplicate %d rejected %v, want %d, 0, none", rep.Accepted, rep.Duplicate, rep.Rejected, want)
	}
	if rep.HighWater != n+1 || len(rep.Gaps) != 0 || rep.Left != 0 {
		t.Fatalf("high water %d gaps %v left %d, want %d, none, 0", rep.HighWater, rep.Gaps, rep.Left, n+1)
	}
	wantDeclined := 0
	for i := range n {
		if amountFor(i)%100 == acquirer.SimDeclineLater {
			wantDeclined++
		}
	}
	if len(rep.Declined) != wantDeclined || len(declined) != wantDeclined || rep.Approved != n-wantDeclined {
		t.Fatalf("declined %d (callback %d) approved %d, want %d and %d", len(rep.Declined), len(declined), rep.Approved, wantDeclined, n-wantDeclined)
	}
	if len(progress) == 0 || progress[len(progress)-1].Done != n+1 {
		t.Fatalf("progress %v", progress)
	}
	st, err := e.journal.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Unacked != 0 || st.ByState[posagent.StateDeclined] != wantDeclined || st.ByState[posagent.StateApproved] != n+1-wantDeclined {
		t.Fatalf("journal after sync: %+v", st.ByState)
	}
	d := declined[0].Record
	if d.State != posagent.StateDeclined || !strings.Contains(d.LastError, "declined") {
		t.Fatalf("declined record %+v", d)
	}
	// Nothing more to do, and the cursor was kept: a second sync changes nothing.
	rep, err = s.Once(ctx)
	if err != nil || rep.Sent != 0 || rep.Settled != 0 {
		t.Fatalf("second sync: %+v %v", rep, err)
	}
	records, seqs, keys, lo, hi, results := e.acquirerCounts()
	if records != n+1 || seqs != n+1 || keys != n+1 || lo != 1 || hi != n+1 || results != n {
		t.Fatalf("acquirer holds %d records (%d sequences, %d keys, %d..%d) and %d decisions", records, seqs, keys, lo, hi, results)
	}
}

// TestVerifyJournalRecord: the acquirer's chain check accepts what the journal wrote and
// refuses any change to a covered field, a wrong key, a credential that does not match.
func TestVerifyJournalRecord(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.fill(2)
	recs, err := e.journal.Pending(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte(strings.Repeat("\x5a", offline.KeySize))
	cred, _ := e.journal.Credential(ctx, recs[1].ID)
	good := WireRecord(recs[1], cred, e.key)
	if reason := acquirer.VerifyJournalRecord(secret, good); reason != "" {
		t.Fatalf("genuine record refused: %s", reason)
	}
	first := WireRecord(recs[0], "", e.key)
	first.CredentialTag = good.CredentialTag // not its own: the hash must break
	tests := []struct {
		name   string
		secret []byte
		mut    func(w *wire.Record)
		want   string
	}{
		{"amount", secret, func(w *wire.Record) { w.Amount++ }, "hash"},
		{"reference", secret, func(w *wire.Record) { w.Reference = "X" }, "hash"},
		{"captured at", secret, func(w *wire.Record) { w.CapturedAt = w.CapturedAt.Add(time.Millisecond) }, "hash"},
		{"terminal", secret, func(w *wire.Record) { w.Terminal = "T2" }, "hash"},
		{"prev hash", secret, func(w *wire.Record) { w.PrevHash = w.Hash }, "hash"},
		{"credential", secret, func(w *wire.Record) { w.Credential = "134567890199999999" }, "credential"},
		{"mac", secret, func(w *wire.Record) { w.MAC = w.Hash }, "mac"},
		{"other key", []byte(strings.Repeat("\x01", offline.KeySize)), func(w *wire.Record) {}, "credential"},
		{"sub-millisecond time", secret, func(w *wire.Record) { w.CapturedAt = w.CapturedAt.Add(time.Microsecond) }, "millisecond"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := good
			tt.mut(&w)
			if got := acquirer.VerifyJournalRecord(tt.secret, w); !strings.Contains(got, tt.want) {
				t.Fatalf("got %q, want a reason about %q", got, tt.want)
			}
		})
	}
	if got := acquirer.VerifyJournalRecord(secret, first); !strings.Contains(got, "hash") {
		t.Fatalf("swapped credential tag: got %q", got)
	}
}
