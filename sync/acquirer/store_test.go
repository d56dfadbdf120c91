package acquirer

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// eachStoreDirect runs fn as a subtest per store kind on a fresh store with T1 and T2.
func eachStoreDirect(t *testing.T, fn func(t *testing.T, s Store)) {
	eachStore(t, func(t *testing.T, e *env) { fn(t, e.store) })
}

// setNow sets a store's clock.
func setNow(s Store, now func() time.Time) { s.(Clocked).SetClock(now) }

func TestStore_Terminals(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		if err := s.AddTerminal(ctx, "T1", testSecret, wire.Policy{}); !errors.Is(err, ErrExists) {
			t.Fatalf("add T1 again: %v, want ErrExists", err)
		}
		if err := s.AddTerminal(ctx, "T3", []byte("short"), wire.Policy{}); err == nil {
			t.Fatal("a secret of the wrong size was accepted")
		}
		got, err := s.ProvisionedSecret(ctx, "T1")
		if err != nil || !bytes.Equal(got, testSecret) {
			t.Fatalf("provisioned secret: %v", err)
		}
		key, err := s.Secret(ctx, "T1")
		if err != nil || !bytes.Equal(key, testSigningKey) {
			t.Fatalf("signing key: %v", err)
		}
		if _, err := s.Secret(ctx, "T9"); !errors.Is(err, signing.ErrUnknown) {
			t.Fatalf("unknown terminal: %v, want signing.ErrUnknown", err)
		}
		if _, err := s.Config(ctx, "T9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("config of an unknown terminal: %v, want ErrNotFound", err)
		}
		cfg, err := s.Config(ctx, "T2")
		if err != nil || cfg.Terminal != "T2" || cfg.Policy.MaxCount != 100 {
			t.Fatalf("config: %+v %v", cfg, err)
		}
	})
}

func TestStore_Seen(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		now := time.Unix(1_800_000_000, 0)
		setNow(s, func() time.Time { return now })
		tests := []struct {
			terminal, nonce string
			expires         time.Time
			want            bool
		}{
			{"T1", "n1", now.Add(time.Minute), false},
			{"T1", "n1", now.Add(time.Minute), true},
			{"T2", "n1", now.Add(time.Minute), false}, // per terminal
			{"T1", "n2", now.Add(-time.Second), false},
			{"T1", "n2", now.Add(time.Minute), false}, // the old one had expired
			{"T1", "n2", now.Add(time.Minute), true},
		}
		for i, tt := range tests {
			got, err := s.Seen(ctx, tt.terminal, tt.nonce, tt.expires)
			if err != nil || got != tt.want {
				t.Fatalf("%d: Seen(%s, %s) = %v, %v; want %v", i, tt.terminal, tt.nonce, got, err, tt.want)
			}
		}
	})
}

func TestStore_Authorize(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		calls := 0
		decide := func() Outcome {
			calls++
			return Outcome{Response: wire.AuthorizationResponse{ID: "id-k1", Decision: wire.Approved, AuthCode: "000123"}}
		}
		first, err := s.Authorize(ctx, "T1", authReq("k1", 123), decide)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.Authorize(ctx, "T1", authReq("k1", 123), decide)
		if err != nil || again != first || calls != 1 {
			t.Fatalf("retry: %+v %v, decided %d times; want %+v once", again, err, calls, first)
		}
		if _, err := s.Authorize(ctx, "T1", authReq("k1", 999), decide); !errors.Is(err, ErrConflict) {
			t.Fatalf("reuse: %v, want ErrConflict", err)
		}
		if _, err := s.Authorize(ctx, "T2", authReq("k1", 999), decide); err != nil || calls != 2 {
			t.Fatalf("another terminal's key: %v (decided %d times)", err, calls)
		}
		// An offline upload of the sale authorized online keeps the online decision.
		r := rec(1, "k1", 123, "")
		resp, err := s.StoreBatch(ctx, "T1", []wire.Record{r}, func(*wire.Record, wire.Record) string { return "" },
			func(wire.Record) wire.Result {
				return wire.Result{ID: r.ID, Sequence: 1, Decision: wire.Declined, Reason: "deferred"}
			})
		if err != nil || statuses(resp) != "accepted" {
			t.Fatalf("upload: %+v %v", resp, err)
		}
		res, err := s.Results(ctx, "T1", 0, 10)
		if err != nil || len(res.Results) != 1 || res.Results[0].Decision != wire.Approved || res.Results[0].AuthCode != "000123" {
			t.Fatalf("results: %+v %v; want the online approval", res, err)
		}
	})
}

func TestStore_ResultsAndOrders(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		ok := func(*wire.Record, wire.Record) string { return "" }
		decide := func(r wire.Record) wire.Result {
			return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: wire.Approved}
		}
		recs := chain(4, func(int) int64 { return 100 })
		recs[2].State = "approved" // authorized online: no deferred result
		if _, err := s.StoreBatch(ctx, "T1", recs, ok, decide); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StoreBatch(ctx, "T2", recs[:1], ok, decide); err != nil {
			t.Fatal(err)
		}
		all, err := s.Results(ctx, "T1", 0, 10)
		if err != nil || len(all.Results) != 3 {
			t.Fatalf("results: %+v %v, want 3", all, err)
		}
		for i, want := range []uint64{1, 2, 4} {
			if all.Results[i].Sequence != want || (i > 0 && all.Results[i].Cursor <= all.Results[i-1].Cursor) {
				t.Fatalf("results out of order: %+v", all.Results)
			}
		}
		page, _ := s.Results(ctx, "T1", all.Results[0].Cursor, 1)
		if len(page.Results) != 1 || page.Results[0].Sequence != 2 || page.Next != page.Results[0].Cursor {
			t.Fatalf("page after the first: %+v", page)
		}
		for _, after := range []uint64{all.Next, math.MaxInt64, math.MaxUint64} {
			end, err := s.Results(ctx, "T1", after, 10)
			if err != nil || len(end.Results) != 0 || end.Next != after {
				t.Fatalf("after %d: %+v %v, want nothing and the same cursor", after, end, err)
			}
		}

		for i, wantPolls := range []int{1, 2, 3} {
			o, polls, err := s.Order(ctx, "T1", "R1")
			if err != nil || polls != wantPolls || o.Reference != "R1" || o.State != "pending" {
				t.Fatalf("poll %d: %+v %d %v", i, o, polls, err)
			}
		}
		if _, _, err := s.Order(ctx, "T2", "R1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("another terminal's order: %v, want ErrNotFound", err)
		}
		at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		if err := s.SetOrder(ctx, "R1", "paid", "unionpay", at); err != nil {
			t.Fatal(err)
		}
		if o, polls, _ := s.Order(ctx, "T1", "R1"); o.State != "paid" || !o.PaidAt.Equal(at) || o.Scheme != "unionpay" || polls != 4 {
			t.Fatalf("paid order: %+v polls %d", o, polls)
		}
		if err := s.SetOrder(ctx, "R9", "paid", "", at); !errors.Is(err, ErrNotFound) {
			t.Fatalf("set an unknown order: %v, want ErrNotFound", err)
		}
	})
}

// TestStore_BatchGapFill: a record filling a gap is checked against both neighbours, and
// the high-water mark and gaps follow.
func TestStore_BatchGapFill(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		link := func(prev *wire.Record, r wire.Record) string {
			if prev != nil && prev.Hash != r.PrevHash {
				return "chain broken"
			}
			return ""
		}
		decide := func(r wire.Record) wire.Result { return wire.Result{ID: r.ID, Sequence: r.Sequence} }
		recs := chain(7, func(int) int64 { return 100 })
		resp, err := s.StoreBatch(ctx, "T1", []wire.Record{recs[1], recs[3], recs[6]}, link, decide)
		if err != nil || statuses(resp) != "accepted,accepted,accepted" || resp.HighWater != 0 || len(resp.Gaps) != 3 {
			t.Fatalf("sparse batch: %+v %v", resp, err)
		}
		wantGaps := []wire.Gap{{From: 1, To: 1}, {From: 3, To: 3}, {From: 5, To: 6}}
		for i, g := range wantGaps {
			if resp.Gaps[i] != g {
				t.Fatalf("gaps %+v, want %+v", resp.Gaps, wantGaps)
			}
		}
		impostor := rec(3, "k3x", 100, recs[1].Hash) // links to 2, but 4 does not link to it
		resp, _ = s.StoreBatch(ctx, "T1", []wire.Record{recs[0], impostor, recs[4], recs[5]}, link, decide)
		if got, want := statuses(resp), "accepted,rejected,accepted,accepted"; got != want {
			t.Fatalf("gap fill: %s, want %s (%+v)", got, want, resp.Results)
		}
		if resp.HighWater != 2 || len(resp.Gaps) != 1 || resp.Gaps[0] != (wire.Gap{From: 3, To: 3}) {
			t.Fatalf("high water %d gaps %+v, want 2 and [3-3]", resp.HighWater, resp.Gaps)
		}
		resp, _ = s.StoreBatch(ctx, "T1", recs[2:3], link, decide)
		if statuses(resp) != "accepted" || resp.HighWater != 7 || len(resp.Gaps) != 0 {
			t.Fatalf("last gap: %+v", resp)
		}
	})
}
