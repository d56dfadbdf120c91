package uplink

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

// loseFirstAnswer passes every request to h, but the answer to the first request of each
// method and path is lost: the client gets a 502 after the acquirer acted.
func loseFirstAnswer(h http.Handler) http.Handler {
	var mu sync.Mutex
	seen := map[string]bool{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		first := !seen[r.Method+" "+r.URL.Path]
		seen[r.Method+" "+r.URL.Path] = true
		mu.Unlock()
		if !first {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		w.WriteHeader(http.StatusBadGateway)
	})
}

// TestClient_RefundCloseTotals: Refund, CloseOrder and Totals against the real endpoint,
// each answer lost once after the acquirer acted: the retry gets the original answer, and
// nothing is refunded twice.
func TestClient_RefundCloseTotals(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.serve(loseFirstAnswer))
	ctx := t.Context()
	captured := time.Now().UTC().Truncate(time.Millisecond)
	sale := wire.AuthorizationRequest{ID: "s1", Sequence: 1, IdempotencyKey: "k1", CapturedAt: captured, Amount: 1000, Currency: "CNY",
		Method: "wallet-code", Scheme: "wechat-pay", Credential: "134567890123456789"}
	if a, err := c.Authorize(ctx, sale); err != nil || a.Decision != wire.Approved {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	refund := wire.RefundRequest{ID: "r1", Sequence: 2, IdempotencyKey: "k2", SaleID: "s1", Amount: 400, Currency: "CNY", Reason: "returned", CapturedAt: captured}
	got, err := c.Refund(ctx, refund)
	if err != nil || got.Decision != wire.Approved || got.Refunded != 400 || got.Captured != 600 {
		t.Fatalf("refund: %+v %v", got, err)
	}
	if st := c.Stats(); st.Retries < 2 {
		t.Fatalf("stats %+v: the lost answers were not retried", st)
	}
	over := refund
	over.ID, over.IdempotencyKey, over.Amount = "r2", "k3", 601
	if got, err := c.Refund(ctx, over); err != nil || got.Decision != wire.Declined || got.Refunded != 400 {
		t.Fatalf("over-refund: %+v %v", got, err)
	}
	other := refund
	other.Amount = 300
	if _, err := c.Refund(ctx, other); err == nil || Temporary(err) {
		t.Fatalf("the key with other content: %v, want a permanent 409", err)
	}

	closed, err := c.CloseOrder(ctx, "R1-RACE")
	if err != nil || closed.State != "refunded" || !closed.Refunded {
		t.Fatalf("close: %+v %v", closed, err)
	}
	if again, err := c.CloseOrder(ctx, "R1-RACE"); err != nil || again != closed {
		t.Fatalf("close again: %+v %v, want %+v", again, err, closed)
	}

	tot, err := c.Totals(ctx, captured.Add(-time.Minute), captured.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if tot.Terminal != terminalID || tot.Sales.Count != 1 || tot.ByScheme["wechat-pay"].Amount["CNY"] != 1000 ||
		tot.Refunds.Count != 1 || tot.Refunds.Amount["CNY"] != 400 || tot.Captured["CNY"] != 600 {
		t.Fatalf("totals: %+v", tot)
	}
	var refunded int64
	e.store.Ledger(ctx, terminalID, func(l wire.LedgerEntry) error { refunded += l.Refunded; return nil })
	if refunded != 400 {
		t.Fatalf("the acquirer refunded %d, want 400 once", refunded)
	}
}
