package acquirer

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// simDecider decides like the server does (the Sim constants) at clock's time.
func simDecider(clock *fakeClock, req wire.AuthorizationRequest) func() Outcome {
	s := &Server{opts: Options{Now: clock.Now, SimPending: 3 * time.Second}}
	return func() Outcome { return s.decideOnline(req) }
}

func reversalOf(req wire.AuthorizationRequest) wire.ReversalRequest {
	return wire.ReversalRequest{ID: req.ID, Sequence: req.Sequence, IdempotencyKey: req.IdempotencyKey, Amount: req.Amount, Currency: req.Currency, Reason: "no answer"}
}

// TestStore_Lifecycle: status, reversal (idempotent, whatever the state), tombstones and
// pending authorizations resolved on the store's clock, as scripted steps per case.
func TestStore_Lifecycle(t *testing.T) {
	type step struct {
		do      string // authorize, reverse, status, advance
		advance time.Duration
		want    string // decision / state; for reverse: previous
		reason  string // authorize: the reason wanted, when not ""
	}
	tests := []struct {
		name   string
		amount int64
		steps  []step
	}{
		{"approved then reversed", 1250, []step{
			{do: "status", want: "not_found"},
			{do: "authorize", want: "approved"},
			{do: "status", want: "approved"},
			{do: "reverse", want: "approved"},
			{do: "reverse", want: "approved"}, // the same answer again
			{do: "status", want: "reversed"},
			{do: "authorize", want: "reversed", reason: "reversed: no answer"},
		}},
		{"declined then reversed", 1251, []step{
			{do: "authorize", want: "declined", reason: "insufficient funds"},
			{do: "reverse", want: "declined"},
			{do: "status", want: "reversed"},
		}},
		{"tombstone then authorize", 1250, []step{
			{do: "reverse", want: "not_found"},
			{do: "status", want: "reversed"},
			{do: "authorize", want: "reversed", reason: ReasonTombstone},
			{do: "authorize", want: "reversed", reason: ReasonTombstone},
			{do: "reverse", want: "not_found"},
		}},
		{"pending then approved", 1296, []step{
			{do: "authorize", want: "pending_customer"},
			{do: "advance", advance: 2999 * time.Millisecond},
			{do: "status", want: "pending_customer"},
			{do: "authorize", want: "pending_customer"},
			{do: "advance", advance: time.Millisecond},
			{do: "authorize", want: "approved"},
			{do: "status", want: "approved"},
			{do: "reverse", want: "approved"},
		}},
		{"pending then declined", 1297, []step{
			{do: "authorize", want: "pending_customer"},
			{do: "advance", advance: 3 * time.Second},
			{do: "status", want: "declined"},
			{do: "authorize", want: "declined", reason: "customer canceled the payment in the wallet"},
		}},
		{"pending resolved by the reversal's read", 1296, []step{
			{do: "authorize", want: "pending_customer"},
			{do: "advance", advance: time.Hour},
			{do: "reverse", want: "approved"},
		}},
		{"pending until reversed", 1298, []step{
			{do: "authorize", want: "pending_customer"},
			{do: "advance", advance: 24 * time.Hour},
			{do: "status", want: "pending_customer"},
			{do: "reverse", want: "pending_customer"},
			{do: "status", want: "reversed"},
			{do: "authorize", want: "reversed"},
		}},
	}
	eachStoreDirect(t, func(t *testing.T, s Store) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := t.Context()
				clock := newClock()
				setNow(s, clock.Now)
				req := authReq(fmt.Sprintf("life%d", i), tt.amount)
				var firstReversal *wire.ReversalResponse
				for n, st := range tt.steps {
					switch st.do {
					case "advance":
						clock.Advance(st.advance)
					case "authorize":
						resp, err := s.Authorize(ctx, "T1", req, simDecider(clock, req))
						if err != nil || string(resp.Decision) != st.want || (st.reason != "" && resp.Reason != st.reason) || resp.ID != req.ID {
							t.Fatalf("step %d: authorize: %+v %v; want %s %q", n, resp, err, st.want, st.reason)
						}
					case "status":
						got, err := s.AuthorizationStatus(ctx, "T1", req.ID)
						if err != nil || got.State != st.want || got.ID != req.ID {
							t.Fatalf("step %d: status: %+v %v; want %s", n, got, err, st.want)
						}
						if st.want != "not_found" && (got.Amount != tt.amount || got.Currency != "CNY") {
							t.Fatalf("step %d: status amount %d %s", n, got.Amount, got.Currency)
						}
						if other, _ := s.AuthorizationStatus(ctx, "T2", req.ID); other.State != wire.StatusNotFound {
							t.Fatalf("step %d: another terminal sees %+v", n, other)
						}
					case "reverse":
						rev, err := s.Reverse(ctx, "T1", reversalOf(req))
						if err != nil || rev.State != "reversed" || rev.Previous != st.want || rev.ID != req.ID {
							t.Fatalf("step %d: reverse: %+v %v; want previous %s", n, rev, err, st.want)
						}
						if firstReversal == nil {
							firstReversal = &rev
						} else if rev != *firstReversal {
							t.Fatalf("step %d: reversal again: %+v, want the first answer %+v", n, rev, *firstReversal)
						}
					}
				}
			})
		}
	})
}

// TestStore_ReversalConflicts: a reversal must name the sale as it was authorized.
func TestStore_ReversalConflicts(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		req := authReq("c1", 1250)
		if _, err := s.Authorize(ctx, "T1", req, simDecider(clock, req)); err != nil {
			t.Fatal(err)
		}
		wrongAmount := reversalOf(req)
		wrongAmount.Amount = 999
		if _, err := s.Reverse(ctx, "T1", wrongAmount); !errors.Is(err, ErrConflict) {
			t.Fatalf("another amount: %v, want ErrConflict", err)
		}
		otherSale := reversalOf(req)
		otherSale.ID = "id-other"
		if _, err := s.Reverse(ctx, "T1", otherSale); !errors.Is(err, ErrConflict) {
			t.Fatalf("the key of another sale: %v, want ErrConflict", err)
		}
		// The same sale id under another key is not a second authorization.
		again := authReq("c2", 1250)
		again.ID = req.ID
		if _, err := s.Authorize(ctx, "T1", again, simDecider(clock, again)); !errors.Is(err, ErrConflict) {
			t.Fatalf("the sale under another key: %v, want ErrConflict", err)
		}
		if _, err := s.Reverse(ctx, "T1", reversalOf(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := s.Authorize(ctx, "T1", again, simDecider(clock, again))
		if err != nil || resp.Decision != wire.Reversed {
			t.Fatalf("the reversed sale under another key: %+v %v, want reversed", resp, err)
		}
		// A tombstone binds its key to its sale.
		if _, err := s.Reverse(ctx, "T1", reversalOf(authReq("c3", 500))); err != nil {
			t.Fatal(err)
		}
		reuse := authReq("c3", 500)
		reuse.ID = "id-c3-other"
		if _, err := s.Authorize(ctx, "T1", reuse, simDecider(clock, reuse)); !errors.Is(err, ErrConflict) {
			t.Fatalf("a tombstone's key for another sale: %v, want ErrConflict", err)
		}
	})
}

// TestStore_ReverseRacesAuthorize: a reversal and the authorization of the same sale sent
// at once, many times: the store serialises them, so either the authorization was
// approved and then reversed, or the tombstone came first and refused it. Never approved
// after a reversal, and nothing captured either way.
func TestStore_ReverseRacesAuthorize(t *testing.T) {
	const n = 40
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		orders := map[string]int{}
		for i := range n {
			req := authReq(fmt.Sprintf("race%d", i), 1250)
			req.Sequence = uint64(i + 1)
			var resp wire.AuthorizationResponse
			var rev wire.ReversalResponse
			var aerr, rerr error
			start := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); <-start; resp, aerr = s.Authorize(ctx, "T1", req, simDecider(clock, req)) }()
			go func() { defer wg.Done(); <-start; rev, rerr = s.Reverse(ctx, "T1", reversalOf(req)) }()
			close(start)
			wg.Wait()
			if aerr != nil || rerr != nil {
				t.Fatalf("%d: authorize %v, reverse %v", i, aerr, rerr)
			}
			switch {
			case resp.Decision == wire.Approved && rev.Previous == "approved":
				orders["approved, then reversed"]++
			case resp.Decision == wire.Reversed && rev.Previous == wire.StatusNotFound && resp.Reason == ReasonTombstone:
				orders["tombstone, then refused"]++
			default:
				t.Fatalf("%d: inconsistent: authorization %+v, reversal %+v", i, resp, rev)
			}
			if st, _ := s.AuthorizationStatus(ctx, "T1", req.ID); st.State != "reversed" {
				t.Fatalf("%d: status %+v, want reversed", i, st)
			}
		}
		var captured int64
		err := s.Ledger(ctx, "T1", func(e wire.LedgerEntry) error {
			if e.State != "reversed" {
				t.Errorf("ledger: %+v, want reversed", e)
			}
			captured += e.Captured
			return nil
		})
		if err != nil || captured != 0 {
			t.Fatalf("ledger: captured %d (%v), want 0", captured, err)
		}
		t.Logf("orders seen over %d races: %v", n, orders)
	})
}

// TestStore_BatchAfterOnline: an offline record of a sale also sent online takes the
// online outcome: approved stays approved; reversed is declined "reversed"; a still
// pending one is reversed now and declined the same way.
func TestStore_BatchAfterOnline(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		recs := chain(4, func(i int) int64 { return []int64{0, 1250, 1250, 1298, 1296}[i] })
		for i, r := range recs {
			req := authReq(r.IdempotencyKey, r.Amount)
			req.ID, req.Sequence = r.ID, r.Sequence
			if _, err := s.Authorize(ctx, "T1", req, simDecider(clock, req)); err != nil {
				t.Fatal(err)
			}
			if i == 1 {
				if _, err := s.Reverse(ctx, "T1", reversalOf(req)); err != nil {
					t.Fatal(err)
				}
			}
		}
		clock.Advance(3 * time.Second) // 4 (1296) has resolved: approved; 3 (1298) never does
		decide := func(r wire.Record) wire.Result {
			return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: wire.Approved, Reason: "deferred"}
		}
		resp, err := s.StoreBatch(ctx, "T1", recs, func(*wire.Record, wire.Record) string { return "" }, decide)
		if err != nil || statuses(resp) != "accepted,accepted,accepted,accepted" {
			t.Fatalf("upload: %+v %v", resp, err)
		}
		res, err := s.Results(ctx, "T1", 0, 10)
		if err != nil || len(res.Results) != 4 {
			t.Fatalf("results: %+v %v", res, err)
		}
		want := []struct{ decision, reason string }{
			{"approved", ""}, {"declined", ReasonReversed}, {"declined", ReasonReversed}, {"approved", ""},
		}
		for i, w := range want {
			if r := res.Results[i]; string(r.Decision) != w.decision || r.Reason != w.reason {
				t.Fatalf("result %d: %+v, want %s %q", i+1, r, w.decision, w.reason)
			}
		}
		st, _ := s.AuthorizationStatus(ctx, "T1", recs[2].ID)
		if st.State != "reversed" {
			t.Fatalf("the pending authorization after the upload: %+v, want reversed", st)
		}
		rev, err := s.Reverse(ctx, "T1", reversalOf(wire.AuthorizationRequest{ID: recs[2].ID, Sequence: 3, IdempotencyKey: recs[2].IdempotencyKey, Amount: 1298, Currency: "CNY"}))
		if err != nil || rev.Previous != "pending_customer" {
			t.Fatalf("its reversal: %+v %v, want previous pending_customer", rev, err)
		}
	})
}

// TestStore_Ledger: every sale the acquirer knows, in terminal and sequence order, with
// what is captured.
func TestStore_Ledger(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		authorize := func(terminal string, seq uint64, key string, amount int64) wire.AuthorizationRequest {
			t.Helper()
			req := authReq(key, amount)
			req.Sequence = seq
			if _, err := s.Authorize(ctx, terminal, req, simDecider(clock, req)); err != nil {
				t.Fatal(err)
			}
			return req
		}
		authorize("T1", 1, "a1", 1250) // approved
		authorize("T1", 2, "a2", 1251) // declined
		s.Reverse(ctx, "T1", reversalOf(authorize("T1", 3, "a3", 1300)))
		authorize("T1", 4, "a4", 1296) // pending, resolved by the time of the ledger
		authorize("T1", 5, "a5", 1298) // pending for ever
		tomb := authReq("a6", 700)
		tomb.Sequence = 6
		s.Reverse(ctx, "T1", reversalOf(tomb)) // a tombstone
		authorize("T2", 1, "b1", 990)
		clock.Advance(time.Minute)

		// Uploaded records: offline (approved and declined by the feed), and final states
		// the terminal reached without the acquirer's authorization.
		recs := chain(14, func(i int) int64 { return int64(100 * i) })
		for i := range recs {
			recs[i].Sequence += 6
		}
		recs = recs[6:] // sequences 13..20 (amounts 700..1400); the check below ignores links
		states := []string{"stored", "stored", "canceled", "failed", "declined", "approved", "approved", "approved"}
		for i := range recs {
			recs[i].State = states[i]
		}
		recs[1].Amount = 1261 // declined after upload
		recs[6].Method, recs[6].Reference, recs[6].Offline = "merchant-qr", "R-paid", false
		recs[7].Method, recs[7].Reference, recs[7].Offline = "merchant-qr", "R-open", false
		for _, ref := range []string{"R-paid", "R-open"} {
			if _, _, err := s.Order(ctx, "T1", ref); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetOrder(ctx, "R-paid", "paid", "unionpay", clock.Now()); err != nil {
			t.Fatal(err)
		}
		decide := func(r wire.Record) wire.Result {
			d := Decide(r.Amount)
			return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: d.Decision, Reason: d.Reason}
		}
		if _, err := s.StoreBatch(ctx, "T1", recs, func(*wire.Record, wire.Record) string { return "" }, decide); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"T1 1 approved 1250/1250 online", "T1 2 declined 1251/0 online", "T1 3 reversed 1300/0 online",
			"T1 4 approved 1296/1296 online", "T1 5 pending_customer 1298/0 online", "T1 6 reversed 700/0 online",
			"T1 13 approved 700/700 offline", "T1 14 declined 1261/0 offline", "T1 15 voided 900/0 offline",
			"T1 16 failed 1000/0 offline", "T1 17 declined 1100/0 offline", "T1 18 unauthorized 1200/0 offline",
			"T1 19 approved 1300/1300 online", "T1 20 pending 1400/0 online",
			"T2 1 approved 990/990 online",
		}
		var got []string
		err := s.Ledger(ctx, "", func(e wire.LedgerEntry) error {
			if e.SaleID == "" || e.IdempotencyKey == "" || e.Currency != "CNY" || e.Refunded != 0 {
				t.Errorf("entry %+v", e)
			}
			got = append(got, fmt.Sprintf("%s %d %s %d/%d %s", e.Terminal, e.Sequence, e.State, e.Amount, e.Captured, e.Source))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("ledger:\n%s\nwant:\n%s", fmt.Sprint(got), fmt.Sprint(want))
		}
		// One terminal, and fn's error stops it.
		n := 0
		stop := errors.New("stop")
		if err := s.Ledger(ctx, "T2", func(e wire.LedgerEntry) error { n++; return nil }); err != nil || n != 1 {
			t.Fatalf("T2's ledger: %d entries, %v", n, err)
		}
		if err := s.Ledger(ctx, "T1", func(wire.LedgerEntry) error { return stop }); !errors.Is(err, stop) {
			t.Fatalf("stopped ledger: %v", err)
		}
		// The ledger showed a4 as it resolves; the status reads (and stores) the same.
		if st, _ := s.AuthorizationStatus(ctx, "T1", "id-a4"); st.State != "approved" {
			t.Fatalf("a4: %+v", st)
		}
	})
}
