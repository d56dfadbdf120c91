package acquirer

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

// refundReq is refund key of amount of the sale saleID (a record id "id-…").
func refundReq(key, saleID string, amount int64) wire.RefundRequest {
	return wire.RefundRequest{ID: "rf-" + key, Sequence: 100, IdempotencyKey: key, SaleID: saleID, Amount: amount, Currency: "CNY", Reason: "returned"}
}

// authorizeSim authorizes req on s with the simulated decision at clock's time.
func authorizeSim(t *testing.T, s Store, clock *fakeClock, terminal string, req wire.AuthorizationRequest) {
	t.Helper()
	if _, err := s.Authorize(t.Context(), terminal, req, simDecider(clock, req)); err != nil {
		t.Fatal(err)
	}
}

// ledgerOf returns the ledger of terminal as "sale_id state amount/captured/refunded" lines.
func ledgerOf(t *testing.T, s Store, terminal string) []string {
	t.Helper()
	var got []string
	err := s.Ledger(t.Context(), terminal, func(e wire.LedgerEntry) error {
		got = append(got, fmt.Sprintf("%s %s %d/%d/%d", e.SaleID, e.State, e.Amount, e.Captured, e.Refunded))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var noCheck = func(*wire.Record, wire.Record) string { return "" }

func simDecide(r wire.Record) wire.Result {
	d := Decide(r.Amount)
	return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: d.Decision, Reason: d.Reason, AuthCode: d.AuthCode}
}

// TestStore_Refund: partial refunds up to what was captured, the answer kept for ever per
// key, conflicts, and refusals of sales that cannot be refunded (as declined, with why).
func TestStore_Refund(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		authorizeSim(t, s, clock, "T1", authReq("s1", 1000)) // approved
		authorizeSim(t, s, clock, "T1", authReq("s2", 1251)) // declined
		authorizeSim(t, s, clock, "T1", authReq("s3", 1300)) // approved, then reversed
		if _, err := s.Reverse(ctx, "T1", reversalOf(authReq("s3", 1300))); err != nil {
			t.Fatal(err)
		}
		authorizeSim(t, s, clock, "T2", authReq("o1", 800)) // another terminal's

		type expect struct {
			decision           wire.Decision
			refunded, captured int64
			reason             string
		}
		tests := []struct {
			name string
			req  wire.RefundRequest
			want expect
		}{
			{"partial", refundReq("r1", "id-s1", 400), expect{wire.Approved, 400, 600, ""}},
			{"second partial", refundReq("r2", "id-s1", 500), expect{wire.Approved, 900, 100, ""}},
			{"more than is left", refundReq("r3", "id-s1", 101), expect{wire.Declined, 900, 100, "exceeds what is left"}},
			{"the rest", refundReq("r4", "id-s1", 100), expect{wire.Approved, 1000, 0, ""}},
			{"nothing left", refundReq("r5", "id-s1", 1), expect{wire.Declined, 1000, 0, "exceeds what is left"}},
			{"declined sale", refundReq("r6", "id-s2", 100), expect{wire.Declined, 0, 0, "is declined, not approved"}},
			{"reversed sale", refundReq("r7", "id-s3", 100), expect{wire.Declined, 0, 0, "is reversed, not approved"}},
			{"unknown sale", refundReq("r8", "id-nope", 100), expect{wire.Declined, 0, 0, "unknown to the acquirer"}},
			{"another terminal's sale", refundReq("r9", "id-o1", 100), expect{wire.Declined, 0, 0, "unknown to the acquirer"}},
		}
		other := refundReq("r10", "id-s1", 1)
		other.Currency = "USD"
		tests = append(tests, struct {
			name string
			req  wire.RefundRequest
			want expect
		}{"another currency", other, expect{wire.Declined, 1000, 0, "captured in CNY, the refund is in USD"}})
		answers := map[string]wire.RefundResponse{}
		for _, tt := range tests {
			got, err := s.Refund(ctx, "T1", tt.req)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if got.ID != tt.req.ID || got.SaleID != tt.req.SaleID || got.Decision != tt.want.decision || got.Refunded != tt.want.refunded ||
				got.Captured != tt.want.captured || !strings.Contains(got.Reason, tt.want.reason) || got.DecidedAt.IsZero() {
				t.Fatalf("%s: %+v, want %+v", tt.name, got, tt.want)
			}
			answers[tt.req.IdempotencyKey] = got
			clock.Advance(time.Second)
		}
		// The same key and content: the original answer, whatever happened since; the reason
		// is not part of the content.
		again := refundReq("r1", "id-s1", 400)
		again.Reason = "asked again"
		if got, err := s.Refund(ctx, "T1", again); err != nil || got != answers["r1"] {
			t.Fatalf("repeated r1: %+v %v, want %+v", got, err, answers["r1"])
		}
		if got, err := s.Refund(ctx, "T1", refundReq("r3", "id-s1", 101)); err != nil || got != answers["r3"] {
			t.Fatalf("repeated declined r3: %+v %v, want %+v", got, err, answers["r3"])
		}
		// Other content under the key, or the refund's id under another key: conflicts.
		if _, err := s.Refund(ctx, "T1", refundReq("r1", "id-s1", 300)); !errors.Is(err, ErrConflict) {
			t.Fatalf("r1 with another amount: %v, want ErrConflict", err)
		}
		moved := refundReq("r11", "id-s1", 1)
		moved.ID = "rf-r1"
		if _, err := s.Refund(ctx, "T1", moved); !errors.Is(err, ErrConflict) {
			t.Fatalf("r1's id under another key: %v, want ErrConflict", err)
		}
		// The key is per terminal: T2 may use r1 for its own sale.
		if got, err := s.Refund(ctx, "T2", refundReq("r1", "id-o1", 800)); err != nil || got.Decision != wire.Approved || got.Captured != 0 {
			t.Fatalf("T2's r1: %+v %v", got, err)
		}
		got := ledgerOf(t, s, "")
		want := []string{"id-s1 approved 1000/0/1000", "id-s2 declined 1251/0/0", "id-s3 reversed 1300/0/0", "id-o1 approved 800/0/800"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ledger %q, want %q", got, want)
		}
	})
}

// TestStore_RefundSources: a sale can be refunded when it was approved online, uploaded
// offline and approved by its deferred decision, or paid as a merchant-presented order.
func TestStore_RefundSources(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		recs := chain(4, func(i int) int64 { return int64(1000 * i) })
		recs[1].Amount = 2061 // declined after upload
		recs[2].Method, recs[2].Reference, recs[2].Offline, recs[2].State = "merchant-qr", "R-paid", false, "approved"
		recs[3].Method, recs[3].Reference, recs[3].Offline, recs[3].State = "merchant-qr", "R-open", false, "approved"
		for _, ref := range []string{"R-paid", "R-open"} {
			if _, _, err := s.Order(ctx, "T1", ref); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetOrder(ctx, "R-paid", "paid", "unionpay", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StoreBatch(ctx, "T1", recs, noCheck, simDecide); err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			sale string
			want wire.Decision
		}{{"id-k1", wire.Approved}, {"id-k2", wire.Declined}, {"id-k3", wire.Approved}, {"id-k4", wire.Declined}} {
			got, err := s.Refund(ctx, "T1", refundReq("r-"+tt.sale, tt.sale, 500))
			if err != nil || got.Decision != tt.want {
				t.Fatalf("refund of %s: %+v %v, want %s", tt.sale, got, err, tt.want)
			}
		}
		got := ledgerOf(t, s, "T1")
		want := []string{"id-k1 approved 1000/500/500", "id-k2 declined 2061/0/0", "id-k3 approved 3000/2500/500", "id-k4 pending 4000/0/0"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ledger %q, want %q", got, want)
		}
	})
}

// TestStore_RefundConcurrent: many refunds of one sale at once never refund more than
// was captured (refunds of a sale serialise in the store), run several times.
func TestStore_RefundConcurrent(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		const runs, n, amount, part = 8, 12, 1000, 300
		for run := range runs {
			// An online sale (its authorization row is locked too) or an uploaded offline
			// one (only the store's serialisation of refunds protects it).
			sale := authReq(fmt.Sprintf("c%d", run), amount)
			if run%2 == 0 {
				authorizeSim(t, s, clock, "T1", sale)
			} else {
				r := rec(uint64(run), sale.IdempotencyKey, amount, "")
				if resp, err := s.StoreBatch(ctx, "T1", []wire.Record{r}, noCheck, simDecide); err != nil || statuses(resp) != "accepted" {
					t.Fatalf("upload: %+v %v", resp, err)
				}
			}
			var wg sync.WaitGroup
			answers := make([]wire.RefundResponse, n)
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					answers[i], errs[i] = s.Refund(ctx, "T1", refundReq(fmt.Sprintf("c%d-%d", run, i), sale.ID, part))
				}()
			}
			wg.Wait()
			approved := 0
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("run %d refund %d: %v", run, i, errs[i])
				}
				if answers[i].Decision == wire.Approved {
					approved++
				}
			}
			if approved != amount/part {
				t.Fatalf("run %d: %d refunds of %d approved of a sale of %d, want %d", run, approved, part, amount, amount/part)
			}
			var e wire.LedgerEntry
			s.Ledger(ctx, "T1", func(x wire.LedgerEntry) error {
				if x.SaleID == sale.ID {
					e = x
				}
				return nil
			})
			if e.Refunded != int64(approved*part) || e.Captured != amount-e.Refunded {
				t.Fatalf("run %d: ledger %+v", run, e)
			}
		}
	})
}

// refundRec is a refund record of parent, chained to prev.
func refundRec(seq uint64, key, parent string, amount int64, prev string) wire.Record {
	r := rec(seq, key, amount, prev)
	r.ID, r.Kind, r.Parent, r.Method = "rf-"+key, "refund", parent, "wallet-code"
	return r
}

// TestStore_RefundRecords: refund records uploaded in state stored are decided at upload
// by the refund rules (their sale may be in the same batch) and their outcome is in the
// results feed; one decided online before is not decided again; one uploaded decided
// (approved or declined) is only stored. Refund records are not sales in the ledger.
func TestStore_RefundRecords(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		sale := rec(1, "k1", 1000, "")
		r2 := refundRec(2, "q2", "id-k1", 400, sale.Hash) // approved: 600 left
		r3 := refundRec(3, "q3", "id-k1", 700, r2.Hash)   // declined: more than is left
		r4 := refundRec(4, "q4", "id-nope", 10, r3.Hash)  // declined: unknown sale
		r5 := refundRec(5, "q5", "id-k1", 100, r4.Hash)   // decided online first
		r6 := refundRec(6, "q6", "id-k1", 50, r5.Hash)    // decided online, uploaded approved
		r7 := refundRec(7, "q7", "id-k1", 300, r6.Hash)   // "approved" but never decided here
		r8 := refundRec(8, "q8", "id-k1", 1, r7.Hash)     // online key reused with other content
		r6.State, r7.State = "approved", "approved"
		online := func(r wire.Record) wire.RefundResponse {
			resp, err := s.Refund(ctx, "T1", refundOfRecord(r))
			if err != nil || resp.Decision != wire.Approved {
				t.Fatalf("online refund %s: %+v %v", r.ID, resp, err)
			}
			return resp
		}
		// The sale and the first refunds in one batch.
		resp, err := s.StoreBatch(ctx, "T1", []wire.Record{sale, r2, r3, r4}, noCheck, simDecide)
		if err != nil || statuses(resp) != "accepted,accepted,accepted,accepted" {
			t.Fatalf("batch: %+v %v", resp, err)
		}
		clock.Advance(time.Minute)
		r5online := online(r5)
		online(r6)
		conflict := refundOfRecord(r8)
		conflict.Amount = 2
		if _, err := s.Refund(ctx, "T1", conflict); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Minute)
		if resp, err = s.StoreBatch(ctx, "T1", []wire.Record{r5, r6, r7, r8}, noCheck, simDecide); err != nil || statuses(resp) != "accepted,accepted,accepted,accepted" {
			t.Fatalf("second batch: %+v %v", resp, err)
		}
		// Uploaded again: duplicates, nothing decided again.
		if resp, err = s.StoreBatch(ctx, "T1", []wire.Record{r2, r3, r4, r5}, noCheck, simDecide); err != nil || statuses(resp) != "duplicate,duplicate,duplicate,duplicate" {
			t.Fatalf("again: %+v %v", resp, err)
		}
		res, err := s.Results(ctx, "T1", 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range res.Results {
			got = append(got, fmt.Sprintf("%d %s %s", r.Sequence, r.ID, r.Decision))
			switch r.ID {
			case r3.ID:
				if !strings.Contains(r.Reason, "exceeds what is left") {
					t.Errorf("r3's reason %q", r.Reason)
				}
			case r4.ID:
				if !strings.Contains(r.Reason, "unknown to the acquirer") {
					t.Errorf("r4's reason %q", r.Reason)
				}
			case r5.ID:
				if !r.DecidedAt.Equal(r5online.DecidedAt) {
					t.Errorf("r5 decided at %v, online at %v: decided twice", r.DecidedAt, r5online.DecidedAt)
				}
			case r8.ID:
				if !strings.Contains(r.Reason, "conflict") {
					t.Errorf("r8's reason %q", r.Reason)
				}
			}
		}
		want := []string{"1 id-k1 approved", "2 rf-q2 approved", "3 rf-q3 declined", "4 rf-q4 declined", "5 rf-q5 approved", "8 rf-q8 declined"}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("results %q, want %q", got, want)
		}
		// Refunded: r2 400 + r5 100 (once) + r6 50 + 2 under r8's key (online); not r7,
		// whose approval the acquirer never made, nor r8's other content.
		if got, want := ledgerOf(t, s, "T1"), []string{"id-k1 approved 1000/448/552"}; !reflect.DeepEqual(got, want) {
			t.Fatalf("ledger %q, want %q", got, want)
		}
	})
}

// TestServer_Refund: the route's status codes: 200 decided (declined too), 409 for a key
// reused with other content, 422 for a request that breaks a rule.
func TestServer_Refund(t *testing.T) { eachStore(t, testServerRefund) }

func testServerRefund(t *testing.T, e *env) {
	var a wire.AuthorizationResponse
	if st, _ := e.do("T1", "POST", "/v1/authorizations", authReq("s1", 1000), &a); st != 200 || a.Decision != wire.Approved {
		t.Fatalf("authorize: %d %+v", st, a)
	}
	var got wire.RefundResponse
	if st, _ := e.do("T1", "POST", "/v1/refunds", refundReq("r1", "id-s1", 600), &got); st != 200 || got.Decision != wire.Approved || got.Refunded != 600 || got.Captured != 400 {
		t.Fatalf("refund: %d %+v", st, got)
	}
	var again wire.RefundResponse
	if st, _ := e.do("T1", "POST", "/v1/refunds", refundReq("r1", "id-s1", 600), &again); st != 200 || again != got {
		t.Fatalf("repeated: %d %+v, want %+v", st, again, got)
	}
	var over wire.RefundResponse
	if st, _ := e.do("T1", "POST", "/v1/refunds", refundReq("r2", "id-s1", 401), &over); st != 200 || over.Decision != wire.Declined || over.Reason == "" {
		t.Fatalf("over-refund: %d %+v", st, over)
	}
	if st, code := errorCode(e, "T1", "POST", "/v1/refunds", refundReq("r1", "id-s1", 500)); st != http.StatusConflict || code != wire.CodeConflict {
		t.Fatalf("other content: %d %s, want 409 conflict", st, code)
	}
	self := refundReq("r3", "rf-r3", 1)
	noSale := refundReq("r4", "", 1)
	zero := refundReq("r5", "id-s1", 0)
	for name, body := range map[string]any{"own id": self, "no sale": noSale, "zero": zero} {
		if st, code := errorCode(e, "T1", "POST", "/v1/refunds", body); st != http.StatusUnprocessableEntity || code != wire.CodeInvalid {
			t.Errorf("%s: %d %s, want 422 invalid", name, st, code)
		}
	}
	if st, code := errorCode(e, "T1", "POST", "/v1/refunds", `{"id":"x","unknown":1}`); st != http.StatusBadRequest || code != wire.CodeBadRequest {
		t.Errorf("unknown field: %d %s, want 400", st, code)
	}
}

// TestServer_OrderClose: a pending order closes (and is never paid later), a -RACE order
// is paid as the close arrives and refunded, closes are idempotent, and the ledger shows
// the refunded order with nothing captured.
func TestServer_OrderClose(t *testing.T) { eachStore(t, testServerOrderClose) }

func testServerOrderClose(t *testing.T, e *env) {
	poll := func(ref string) wire.Order {
		t.Helper()
		var o wire.Order
		if st, _ := e.do("T1", "GET", "/v1/orders/"+ref, nil, &o); st != 200 {
			t.Fatalf("poll %s: %d", ref, st)
		}
		return o
	}
	closeOrder := func(terminal, ref string) (int, wire.OrderClose) {
		t.Helper()
		var c wire.OrderClose
		st, _ := e.do(terminal, "POST", "/v1/orders/"+ref+"/close", nil, &c)
		return st, c
	}
	for _, tt := range []struct {
		ref      string
		polls    int
		state    string
		refunded bool
	}{
		{"R1", 1, "closed", false},       // pending when closed
		{"R2-RACE", 1, "refunded", true}, // paid as the close arrived
		{"R3", 0, "closed", false},       // never polled
		{"R4", 2, "refunded", true},      // paid on the second poll, closed after
		{"R5-EXPIRE", 2, "expired", false},
	} {
		for range tt.polls {
			poll(tt.ref)
		}
		for i := range 2 { // idempotent
			st, c := closeOrder("T1", tt.ref)
			if st != 200 || c.Reference != tt.ref || c.State != tt.state || c.Refunded != tt.refunded || c.Reason == "" {
				t.Fatalf("%s: close %d: %d %+v, want %s refunded=%v", tt.ref, i, st, c, tt.state, tt.refunded)
			}
		}
		if o := poll(tt.ref); o.State != tt.state {
			t.Fatalf("%s: polled after the close: %+v, want %s", tt.ref, o, tt.state)
		}
	}
	// R1 was closed after one poll: the second poll would have paid it.
	if o := poll("R1"); o.State != "closed" {
		t.Fatalf("R1 paid after its close: %+v", o)
	}
	// A payment that read the order pending just before the close cannot pay it after.
	if err := e.store.SetOrder(t.Context(), "R1", "paid", "unionpay", time.Now()); !errors.Is(err, ErrConflict) {
		t.Fatalf("paying a closed order: %v, want ErrConflict", err)
	}
	if st, _ := closeOrder("T2", "R1"); st != http.StatusNotFound {
		t.Fatalf("another terminal's close: %d, want 404", st)
	}
	if st, code := errorCode(e, "T1", "POST", "/v1/orders/"+strings.Repeat("X", 26)+"/close", nil); st != 400 || code != wire.CodeBadRequest {
		t.Fatalf("long reference: %d %s", st, code)
	}
	// The terminal uploads the sales; the raced one is refunded in the ledger, and the
	// close now knows its amount.
	recs := chain(2, func(i int) int64 { return int64(1500 * i) })
	for i, ref := range []string{"R2-RACE", "R1"} {
		recs[i].Method, recs[i].Reference, recs[i].Offline, recs[i].State = "merchant-qr", ref, false, "canceled"
	}
	var br wire.BatchResponse
	if st, _ := e.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: recs}, &br); st != 200 || statuses(br) != "accepted,accepted" {
		t.Fatalf("upload: %d %+v", st, br)
	}
	if _, c := closeOrder("T1", "R2-RACE"); c.Amount != 1500 || c.Currency != "CNY" || !c.Refunded {
		t.Fatalf("close after the upload: %+v", c)
	}
	if got, want := ledgerOf(t, e.store, "T1"), []string{"id-k1 refunded 1500/0/1500", "id-k2 closed 3000/0/0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("ledger %q, want %q", got, want)
	}
}

// TestStore_Totals: a period's sales by state, method and scheme, refunds by their own
// capture time, and the net captured; sales and refunds outside the period left out.
func TestStore_Totals(t *testing.T) {
	eachStoreDirect(t, func(t *testing.T, s Store) {
		ctx := t.Context()
		clock := newClock()
		setNow(s, clock.Now)
		from := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
		to := from.Add(8 * time.Hour)
		at := func(d time.Duration) time.Time { return from.Add(d) }
		online := func(key string, amount int64, when time.Time, scheme string) wire.AuthorizationRequest {
			req := authReq(key, amount)
			req.CapturedAt, req.Scheme = when, scheme
			authorizeSim(t, s, clock, "T1", req)
			return req
		}
		online("a1", 1000, at(0), "wechat-pay")                // approved, the first instant
		online("a2", 2000, at(time.Hour), "alipay")            // approved, refunded 500 in the period
		online("a3", 1251, at(2*time.Hour), "wechat-pay")      // declined
		a4 := online("a4", 700, at(3*time.Hour), "wechat-pay") // reversed
		online("a5", 400, at(-time.Minute), "wechat-pay")      // before: refunded 100 in the period
		online("a6", 900, to, "wechat-pay")                    // at the end: excluded
		authorizeSim(t, s, clock, "T2", authReq("b1", 5000))   // another terminal
		if _, err := s.Reverse(ctx, "T1", reversalOf(a4)); err != nil {
			t.Fatal(err)
		}
		// Offline records: approved and declined after upload; a paid merchant-presented sale.
		recs := chain(3, func(i int) int64 { return int64(300 * i) })
		recs[1].Amount = 661
		recs[2].Method, recs[2].Scheme, recs[2].Reference, recs[2].Offline, recs[2].State = "merchant-qr", "", "R-paid", false, "approved"
		for i := range recs {
			recs[i].Sequence += 10
			recs[i].CapturedAt = at(time.Duration(4+i) * time.Hour)
		}
		if _, _, err := s.Order(ctx, "T1", "R-paid"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetOrder(ctx, "R-paid", "paid", "unionpay", clock.Now()); err != nil {
			t.Fatal(err)
		}
		// A refund record in the batch, captured in the period: refunds 300 of k1.
		rr := refundRec(14, "q1", "id-k1", 300, recs[2].Hash)
		rr.CapturedAt = at(7 * time.Hour)
		if _, err := s.StoreBatch(ctx, "T1", append(recs, rr), noCheck, simDecide); err != nil {
			t.Fatal(err)
		}
		refund := func(key, sale string, amount int64, when time.Time) {
			req := refundReq(key, sale, amount)
			req.CapturedAt = when
			if resp, err := s.Refund(ctx, "T1", req); err != nil || resp.Decision != wire.Approved {
				t.Fatalf("refund %s: %+v %v", key, resp, err)
			}
		}
		refund("f1", "id-a2", 500, at(5*time.Hour))
		refund("f2", "id-a5", 100, at(6*time.Hour))
		refund("f3", "id-a1", 200, to.Add(time.Hour)) // after the period
		if resp, _ := s.Refund(ctx, "T1", refundReq("f4", "id-a3", 1)); resp.Decision != wire.Declined {
			t.Fatalf("refund of a declined sale: %+v", resp)
		}

		got, err := s.Totals(ctx, "T1", from, to)
		if err != nil {
			t.Fatal(err)
		}
		cny := func(n, amount int64) wire.Tally { return wire.Tally{Count: n, Amount: map[string]int64{"CNY": amount}} }
		want := wire.Totals{
			Terminal: "T1", From: from, To: to,
			Sales: cny(7, 1000+2000+1251+700+300+661+900),
			ByState: map[string]wire.Tally{
				"approved": cny(4, 1000+2000+300+900), "declined": cny(2, 1251+661), "reversed": cny(1, 700),
			},
			ByMethod: map[string]wire.Tally{"wallet-code": cny(2, 3000), "emv-cpm": cny(1, 300), "merchant-qr": cny(1, 900)},
			ByScheme: map[string]wire.Tally{"wechat-pay": cny(1, 1000), "alipay": cny(1, 2000), "unknown": cny(1, 300), "unionpay": cny(1, 900)},
			Refunds:  cny(3, 300+500+100),
			Captured: map[string]int64{"CNY": 1000 + 2000 + 300 + 900 - (300 + 500 + 100)},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("totals\n%+v\nwant\n%+v", got, want)
		}
		// An empty period: zeros, not nulls.
		empty, err := s.Totals(ctx, "T1", to.Add(24*time.Hour), to.Add(48*time.Hour))
		if err != nil || empty.Sales.Count != 0 || empty.Sales.Amount == nil || empty.ByState == nil || len(empty.Captured) != 0 {
			t.Fatalf("empty period: %+v %v", empty, err)
		}
	})
}

// TestServer_Totals: the route answers the store's totals and refuses bad periods.
func TestServer_Totals(t *testing.T) { eachStore(t, testServerTotals) }

func testServerTotals(t *testing.T, e *env) {
	var a wire.AuthorizationResponse
	if st, _ := e.do("T1", "POST", "/v1/authorizations", authReq("s1", 1000), &a); st != 200 {
		t.Fatalf("authorize: %d", st)
	}
	q := func(from, to string) string {
		return "/v1/terminals/T1/totals?" + url.Values{"from": {from}, "to": {to}}.Encode()
	}
	var got wire.Totals
	if st, _ := e.do("T1", "GET", q("2026-11-21T00:00:00Z", "2026-11-22T00:00:00+08:00"), nil, &got); st != 200 ||
		got.Sales.Count != 1 || got.Captured["CNY"] != 1000 || got.ByMethod["wallet-code"].Count != 1 || got.ByScheme["wechat-pay"].Amount["CNY"] != 1000 {
		t.Fatalf("totals: %d %+v", st, got)
	}
	for _, path := range []string{q("", "2026-11-22T00:00:00Z"), q("2026-11-21", "2026-11-22T00:00:00Z"), q("2026-11-22T00:00:00Z", "2026-11-22T00:00:00Z")} {
		if st, code := errorCode(e, "T1", "GET", path, nil); st != 400 || code != wire.CodeBadRequest {
			t.Errorf("%s: %d %s, want 400", path, st, code)
		}
	}
	if st, _ := errorCode(e, "T1", "GET", "/v1/terminals/T2/totals?from=2026-11-21T00:00:00Z&to=2026-11-22T00:00:00Z", nil); st != 403 {
		t.Errorf("another terminal's totals: %d, want 403", st)
	}
}
