package offline

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

var usd, _ = posagent.LookupCurrency("USD")

// shiftJournal is a journal on a settable clock starting at t0.
func shiftJournal(t testing.TB, t0 time.Time) (*Journal, *clock, string) {
	t.Helper()
	clk := &clock{t: t0}
	path := filepath.Join(t.TempDir(), "journal.db")
	return openTest(t, path, Options{Terminal: "T1", Policy: testPolicy(), Now: clk.Now}), clk, path
}

// rec is a record to journal for a report test: captured at, then moved through states.
type rec struct {
	key      string
	at       time.Duration // after t0
	minor    int64
	cur      posagent.Currency
	method   posagent.Method
	scheme   posagent.Scheme
	offline  bool
	parent   string // the key of the refunded sale
	states   []posagent.State
	wantNote bool
}

// journalRecs appends and moves the records; it returns the records by key.
func journalRecs(t testing.TB, j *Journal, t0 time.Time, recs []rec) map[string]Record {
	t.Helper()
	ctx := context.Background()
	out := map[string]Record{}
	for _, r := range recs {
		s := NewSale{IdempotencyKey: r.key, Reference: "REF-" + r.key, Amount: posagent.Amount{Minor: r.minor, Currency: r.cur},
			Method: r.method, Scheme: r.scheme, Offline: r.offline, CapturedAt: t0.Add(r.at)}
		if r.parent != "" {
			s.Kind, s.Parent = posagent.KindRefund, out[r.parent].ID
		}
		got := mustAppend(t, j, s)
		for _, st := range r.states {
			var err error
			if got, err = j.Transition(ctx, got.ID, st, "test: "+string(st)); err != nil {
				t.Fatalf("%s → %s: %v", r.key, st, err)
			}
		}
		out[r.key] = got
	}
	return out
}

var (
	approved  = posagent.StateApproved
	declined  = posagent.StateDeclined
	uploading = posagent.StateUploading
	wallet    = posagent.MethodWalletCode
	cpm       = posagent.MethodEMVCPM
)

// mixedRecords: sales in every state, online and offline (stored, uploading, approved and
// declined after upload), refunds approved, pending and declined, two currencies, and
// records outside the period [t0, t0+1h).
var mixedRecords = []rec{
	{key: "before", at: -time.Minute, minor: 999, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
	{key: "a1", minor: 1000, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
	{key: "a2", at: time.Minute, minor: 2000, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, states: []posagent.State{approved}},
	{key: "d1", at: 2 * time.Minute, minor: 5100, cur: cny, method: wallet, scheme: posagent.SchemeAlipay, states: []posagent.State{declined}},
	{key: "f1", at: 3 * time.Minute, minor: 300, cur: cny, method: wallet, scheme: posagent.SchemeAlipay, states: []posagent.State{posagent.StateFailed}},
	{key: "c1", at: 4 * time.Minute, minor: 400, cur: cny, method: posagent.MethodMerchantQR, scheme: posagent.SchemeAlipay, states: []posagent.State{posagent.StateCanceled}},
	{key: "au", at: 5 * time.Minute, minor: 500, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, wantNote: true},
	{key: "o1", at: 6 * time.Minute, minor: 700, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, offline: true, wantNote: true},
	{key: "o2", at: 7 * time.Minute, minor: 800, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, offline: true, states: []posagent.State{uploading}, wantNote: true},
	{key: "o3", at: 8 * time.Minute, minor: 900, cur: cny, method: wallet, scheme: posagent.SchemeAlipay, offline: true, states: []posagent.State{uploading, approved}},
	{key: "o4", at: 9 * time.Minute, minor: 2061, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, offline: true, states: []posagent.State{uploading, declined}, wantNote: true},
	{key: "o5", at: 10 * time.Minute, minor: 600, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, offline: true, states: []posagent.State{posagent.StateCanceled}},
	{key: "r1", at: 11 * time.Minute, minor: 300, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, parent: "a1", states: []posagent.State{approved}},
	{key: "r2", at: 12 * time.Minute, minor: 200, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, parent: "a1", wantNote: true},
	{key: "r3", at: 13 * time.Minute, minor: 100, cur: cny, method: cpm, scheme: posagent.SchemeUnionPay, parent: "a2", states: []posagent.State{declined}},
	{key: "u1", at: 14 * time.Minute, minor: 1500, cur: usd, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
	{key: "u2", at: 15 * time.Minute, minor: 2500, cur: usd, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{declined}},
	{key: "ur1", at: 16 * time.Minute, minor: 500, cur: usd, method: wallet, scheme: posagent.SchemeWeChatPay, parent: "u1", states: []posagent.State{approved}},
	{key: "end", at: time.Hour, minor: 888, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
}

func TestJournal_Totals(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	j, _, _ := shiftJournal(t, t0)
	recs := journalRecs(t, j, t0, mixedRecords)

	got, err := j.Totals(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := func(n int, amount int64) Count { return Count{n, amount} }
	wantCNY := CurrencyTotals{
		Currency: "CNY",
		Sales: map[posagent.State]Count{approved: c(3, 3900), declined: c(2, 7161), posagent.StateFailed: c(1, 300),
			posagent.StateCanceled: c(2, 1000), posagent.StateAuthorizing: c(1, 500), posagent.StateStored: c(1, 700), uploading: c(1, 800)},
		Approved: c(3, 3900), PendingOffline: c(2, 1500),
		ByMethod: map[posagent.Method]Split{wallet: {Approved: c(2, 1900)}, cpm: {Approved: c(1, 2000), PendingOffline: c(2, 1500)}},
		ByScheme: map[posagent.Scheme]Split{posagent.SchemeWeChatPay: {Approved: c(1, 1000)}, posagent.SchemeAlipay: {Approved: c(1, 900)},
			posagent.SchemeUnionPay: {Approved: c(1, 2000), PendingOffline: c(2, 1500)}},
		Online: c(2, 3000), Offline: Split{Approved: c(1, 900), PendingOffline: c(2, 1500)},
		DeclinedAfterUpload: c(1, 2061),
		Refunds:             map[posagent.State]Count{approved: c(1, 300), posagent.StateAuthorizing: c(1, 200), declined: c(1, 100)},
		RefundsApproved:     c(1, 300), RefundsPending: c(1, 200),
		Net: 3600,
	}
	wantUSD := CurrencyTotals{
		Currency: "USD",
		Sales:    map[posagent.State]Count{approved: c(1, 1500), declined: c(1, 2500)},
		Approved: c(1, 1500),
		ByMethod: map[posagent.Method]Split{wallet: {Approved: c(1, 1500)}},
		ByScheme: map[posagent.Scheme]Split{posagent.SchemeWeChatPay: {Approved: c(1, 1500)}},
		Online:   c(1, 1500),
		Refunds:  map[posagent.State]Count{approved: c(1, 500)}, RefundsApproved: c(1, 500),
		Net: 1000,
	}
	for _, want := range []CurrencyTotals{wantCNY, wantUSD} {
		t.Run(want.Currency, func(t *testing.T) {
			if got := got.Currency(want.Currency); !reflect.DeepEqual(got, want) {
				t.Errorf("Totals %s:\n got %+v\nwant %+v", want.Currency, got, want)
			}
		})
	}
	t.Run("period", func(t *testing.T) {
		if len(got.Currencies) != 2 || got.Currencies[0].Currency != "CNY" || got.Currencies[1].Currency != "USD" {
			t.Errorf("currencies %+v, want CNY then USD", got.Currencies)
		}
		if got, want := got.Records, len(mixedRecords)-2; got != want {
			t.Errorf("records = %d, want %d (before and end are outside)", got, want)
		}
		if !got.From.Equal(t0) || !got.To.Equal(t0.Add(time.Hour)) {
			t.Errorf("period %s – %s", got.From, got.To)
		}
	})
	t.Run("notices", func(t *testing.T) {
		var want []string
		for _, r := range mixedRecords {
			if r.wantNote {
				want = append(want, fmt.Sprintf("%d %s", recs[r.key].Sequence, recs[r.key].State))
			}
		}
		var gotN []string
		for _, n := range got.Notices {
			gotN = append(gotN, fmt.Sprintf("%d %s", n.Sequence, n.State))
		}
		if !reflect.DeepEqual(gotN, want) {
			t.Errorf("notices %v, want %v", gotN, want)
		}
		for _, n := range got.Notices {
			if n.DeclinedAfterUpload() != (n.ID == recs["o4"].ID) {
				t.Errorf("notice %+v: DeclinedAfterUpload = %v", n, n.DeclinedAfterUpload())
			}
		}
	})
	t.Run("empty period", func(t *testing.T) {
		got, err := j.Totals(ctx, t0.Add(-time.Hour), t0.Add(-30*time.Minute))
		if err != nil || got.Records != 0 || len(got.Currencies) != 0 || len(got.Notices) != 0 {
			t.Errorf("Totals of an empty period = %+v, %v", got, err)
		}
	})
}

func TestJournal_CloseShift(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	j, clk, path := shiftJournal(t, t0)
	journalRecs(t, j, t0, mixedRecords[1:4]) // a1, a2, d1: 3000 approved
	t1 := t0.Add(30 * time.Minute)

	z1, closed, err := j.CloseShift(ctx, t1, "")
	if err != nil || !closed {
		t.Fatalf("CloseShift 1: %v %v", closed, err)
	}
	if got, want := fmt.Sprintf("%d %s %s %d", z1.Number, z1.From.Format(time.RFC3339), z1.To.Format(time.RFC3339), z1.Totals.Currency("CNY").Net),
		"1 2026-03-02T09:00:00Z 2026-03-02T09:30:00Z 3000"; got != want {
		t.Errorf("Z 1 = %q, want %q", got, want)
	}

	t.Run("the next shift starts at the close", func(t *testing.T) {
		x, err := j.CurrentShift(ctx, t1.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if x.Number != 2 || !x.From.Equal(t1) || x.Closed() || x.Totals.Records != 0 {
			t.Errorf("X after Z 1 = %+v", x)
		}
	})

	clk.Add(40 * time.Minute)
	// "late" was captured before the close but journaled after it (its sale waited for the
	// write lock while the close committed): it is in Z 2, not lost between the two.
	journalRecs(t, j, t0, []rec{
		{key: "b1", at: 40 * time.Minute, minor: 1250, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
		{key: "late", at: 30*time.Minute - time.Millisecond, minor: 70, cur: cny, method: wallet, scheme: posagent.SchemeWeChatPay, states: []posagent.State{approved}},
	})
	t2 := t0.Add(time.Hour)
	z2, closed, err := j.CloseShift(ctx, t2, "close-2")
	if err != nil || !closed || z2.Number != 2 || !z2.From.Equal(t1) || !z2.To.Equal(t2) || z2.Totals.Currency("CNY").Approved != (Count{2, 1320}) ||
		z2.AfterSequence != 3 || z2.LastSequence != 5 || z1.AfterSequence != 0 || z1.LastSequence != 3 {
		t.Fatalf("Z 2 = %+v, %v, %v", z2, closed, err)
	}

	t.Run("idempotent", func(t *testing.T) {
		again, closed, err := j.CloseShift(ctx, t2.Add(time.Minute), "close-2")
		if err != nil || closed || !reflect.DeepEqual(again, z2) {
			t.Errorf("close again with the key: closed=%v err=%v\n got %+v\nwant %+v", closed, err, again, z2)
		}
		all, err := j.Shifts(ctx)
		if err != nil || len(all) != 2 {
			t.Errorf("Shifts: %d, %v; want 2", len(all), err)
		}
	})

	t.Run("read back", func(t *testing.T) {
		all, err := j.Shifts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []Shift{z1, z2} {
			if !reflect.DeepEqual(all[i], want) {
				t.Errorf("Shifts[%d]:\n got %+v\nwant %+v", i, all[i], want)
			}
			one, err := j.Shift(ctx, want.Number)
			if err != nil || !reflect.DeepEqual(one, want) {
				t.Errorf("Shift(%d) = %+v, %v", want.Number, one, err)
			}
		}
		if _, err := j.Shift(ctx, 3); !errors.Is(err, ErrNotFound) {
			t.Errorf("Shift(3): %v, want ErrNotFound", err)
		}
	})

	t.Run("bad key", func(t *testing.T) {
		if _, _, err := j.CloseShift(ctx, t2, "bad\nkey"); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("CloseShift with a control character in the key: %v", err)
		}
	})

	t.Run("survives a purge and a reopen", func(t *testing.T) {
		recs, err := j.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		if err := j.Ack(ctx, ids...); err != nil {
			t.Fatal(err)
		}
		n, err := j.Purge(ctx, clk.Now().Add(DefaultRetention+time.Hour))
		if err != nil || n != len(recs) {
			t.Fatalf("Purge: %d, %v; want %d", n, err, len(recs))
		}
		if after, err := j.Totals(ctx, t0, t2); err != nil || after.Records != 0 {
			t.Fatalf("records left after the purge: %+v %v", after, err)
		}
		j.Close()
		j2 := openTest(t, path, Options{ReadOnly: true})
		for _, want := range []Shift{z1, z2} {
			got, err := j2.Shift(ctx, want.Number)
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("Z %d after purge:\n got %+v %v\nwant %+v", want.Number, got, err, want)
			}
		}
		x, err := j2.CurrentShift(ctx, t2.Add(time.Hour))
		if err != nil || x.Number != 3 || !x.From.Equal(t2) {
			t.Errorf("X after purge = %+v, %v", x, err)
		}
	})
}

func TestJournal_CloseShiftEmpty(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	j, _, _ := shiftJournal(t, t0)
	z, closed, err := j.CloseShift(ctx, t0, "")
	if err != nil || !closed || z.Number != 1 || !z.From.Equal(t0) || !z.To.Equal(t0) || z.Totals.Records != 0 {
		t.Errorf("Z of an empty journal = %+v, %v, %v", z, closed, err)
	}
	// A clock set back: the next shift is empty, it does not overlap the last.
	z2, _, err := j.CloseShift(ctx, t0.Add(-time.Hour), "")
	if err != nil || z2.Number != 2 || !z2.From.Equal(t0) || !z2.To.Equal(t0) {
		t.Errorf("Z after the clock went back = %+v, %v", z2, err)
	}
}

// BenchmarkJournal_Totals is the X report over a journal of 100,000 records in one shift
// (mixed states, methods, schemes, two currencies): report-ms is the time of Totals.
func BenchmarkJournal_Totals(b *testing.B) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	j, _, _ := shiftJournal(b, t0)
	const n = 100_000
	fillJournal(b, j, t0, n)
	from, to := t0, t0.Add(24*time.Hour)
	var got ShiftTotals
	for b.Loop() {
		var err error
		if got, err = j.Totals(ctx, from, to); err != nil {
			b.Fatal(err)
		}
	}
	if got.Records != n || len(got.Notices) != maxNotices || got.NoticesMore == 0 {
		b.Fatalf("records = %d, want %d; %d notices and %d more", got.Records, n, len(got.Notices), got.NoticesMore)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "report-ms")
}

// fillJournal inserts n records straight into the table (Append's fsync per record would
// take minutes), spread over a day from t0.
func fillJournal(b *testing.B, j *Journal, t0 time.Time, n int) {
	b.Helper()
	tx, err := j.w.Begin()
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE counter SET value = ? WHERE name = 'sequence'`, n); err != nil {
		b.Fatal(err)
	}
	st, err := tx.Prepare(`INSERT INTO sales (seq, id, terminal, idempotency_key, reference, captured_at, amount, currency, method, scheme,
		credential_masked, offline, state, updated_at, prev_hash, hash, mac, kind, parent) VALUES (?, ?, 'T1', ?, '', ?, ?, ?, ?, ?, '', ?, ?, ?, x'', x'', x'', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	// A terminal's mix: most sales approved; offline ones pending are bounded by the policy.
	states := make([]string, 100)
	for i := range states {
		states[i] = "approved"
	}
	copy(states, []string{"declined", "declined", "declined", "declined", "canceled", "canceled", "failed", "stored", "uploading", "authorizing"})
	methods := []string{"wallet-code", "emv-cpm", "merchant-qr"}
	schemes := []string{"wechat-pay", "alipay", "unionpay", "e-cny"}
	for i := 1; i <= n; i++ {
		cur, kind, parent := "CNY", "sale", ""
		if i%10 == 3 {
			cur = "USD"
		}
		if i%17 == 0 {
			kind, parent = "refund", "p"
		}
		at := t0.Add(time.Duration(i) * 24 * time.Hour / time.Duration(n+1)).UnixMilli()
		if _, err := st.Exec(i, fmt.Sprint("id-", i), fmt.Sprint("k-", i), at, 100+i%5000, cur, methods[i%3], schemes[i%4],
			i%5 == 0, states[i%len(states)], at, kind, parent); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}
