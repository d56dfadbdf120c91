package device

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// ErrorBody is the local API's error answer.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// remarshal decodes a JSON object read as a map into out.
func remarshal(t *testing.T, in any, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}

// waitJob waits for a printed job whose text holds want.
func waitJob(t *testing.T, e *env, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, j := range e.sim.Printer.Jobs() {
			if strings.Contains(j.Text, want) {
				return j.Text
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no printed job holds %q", want)
	return ""
}

// Refunds through the real stack: partial, partial, an over-refund refused, a repeated key
// (the same refund), other content under a used key, a refund while the acquirer is down
// (stored, then forwarded after a restart), and the acquirer's ledger agrees on every amount.
func TestAgent_Refunds(t *testing.T) {
	e := newEnv(t, nil)
	p := e.create(1000, "k-refunded", ModeScan)
	e.scan(wechatCode)
	if got := e.wait(p.ID, done); got.State != PaymentApproved {
		t.Fatalf("sale: %+v", got)
	}
	refund := func(amount int64, key string) (int, Refund, ErrorBody) {
		t.Helper()
		var raw map[string]any
		code := e.do("POST", "/v1/payments/"+p.ID+"/refunds", RefundRequest{Amount: amount, IdempotencyKey: key, Reason: "returned"}, &raw)
		var rf Refund
		var eb ErrorBody
		remarshal(t, raw, &rf)
		remarshal(t, raw, &eb)
		return code, rf, eb
	}
	code, r1, _ := refund(300, "r-1")
	if code != 201 || r1.State != "approved" || r1.Amount != 300 || r1.PaymentID != p.ID {
		t.Fatalf("first partial: %d %+v", code, r1)
	}
	waitJob(t, e, "REFUND")
	if code, r2, _ := refund(300, "r-2"); code != 201 || r2.State != "approved" {
		t.Fatalf("second partial: %d %+v", code, r2)
	}
	if code, _, eb := refund(500, "r-over"); code != 422 || eb.Error.Code != "refund_refused" || !strings.Contains(eb.Error.Message, "more than is left") {
		t.Errorf("over-refund: %d %+v", code, eb)
	}
	if code, again, _ := refund(300, "r-2"); code != 201 || again.ID == r1.ID || again.State != "approved" {
		t.Errorf("repeated key: %d %+v", code, again)
	}
	if code, _, eb := refund(301, "r-2"); code != 409 || eb.Error.Code != "idempotency_conflict" {
		t.Errorf("used key, other amount: %d %+v", code, eb)
	}

	// The acquirer is down: the refund is stored, and forwarded after a restart.
	ev := e.subscribe("")
	e.down.Store(true)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == false })
	code, r3, _ := refund(200, "r-3")
	if code != 201 || r3.State != "stored" {
		t.Fatalf("refund while the acquirer is down: %d %+v", code, r3)
	}
	e.shutdown()
	e.down.Store(false)
	e.start()
	deadline := time.Now().Add(15 * time.Second)
	var got Payment
	for {
		got = Payment{}
		e.do("GET", "/v1/payments/"+p.ID, nil, &got)
		if got.RefundedAmount == 800 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.RefundedAmount != 800 || got.PendingRefundAmount != 0 || len(got.Refunds) != 3 {
		t.Fatalf("payment after the forwarded refund: refunded %d, pending %d, %d refunds: %+v", got.RefundedAmount, got.PendingRefundAmount, len(got.Refunds), got.Refunds)
	}
	l, ok := e.ledger("k-refunded")
	if !ok || l.Refunded != 800 || l.Captured != 200 {
		t.Errorf("ledger %+v (found %v), want refunded 800, captured 200", l, ok)
	}

	t.Run("refused", func(t *testing.T) {
		w := e.create(500, "k-open-refund", ModeScan)
		var eb ErrorBody
		if code := e.do("POST", "/v1/payments/"+w.ID+"/refunds", RefundRequest{Amount: 100, IdempotencyKey: "r-open"}, &eb); code != 409 || eb.Error.Code != "not_refundable" {
			t.Errorf("refund of a waiting payment: %d %+v", code, eb)
		}
		e.do("POST", "/v1/payments/"+w.ID+"/cancel", nil, nil)
		if code := e.do("POST", "/v1/payments/"+p.ID+"/refunds", RefundRequest{Amount: 100, Currency: "USD", IdempotencyKey: "r-usd"}, &eb); code != 422 || eb.Error.Code != "currency_mismatch" {
			t.Errorf("refund in another currency: %d %+v", code, eb)
		}
		if code := e.do("POST", "/v1/payments/nope/refunds", RefundRequest{Amount: 100, IdempotencyKey: "r-nope"}, &eb); code != 404 {
			t.Errorf("refund of an unknown payment: %d %+v", code, eb)
		}
	})
}

// A sale stored offline and not yet sent is voided by a cancel: the acquirer receives it
// as voided (no hole in the chain) and captures nothing. One already approved is refunded,
// not canceled.
func TestAgent_VoidOfflineSale(t *testing.T) {
	e := newEnv(t, nil)
	ev := e.subscribe("")
	e.down.Store(true)
	ev.next(t, "acquirer", func(m map[string]any) bool { return m["online"] == false })
	p := e.create(1500, "k-void", ModeScan)
	e.scan(cpmCode)
	if got := e.wait(p.ID, done); got.State != PaymentStored {
		t.Fatalf("offline sale: %+v", got)
	}
	var got Payment
	if code := e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, &got); code != 200 || got.State != PaymentCanceled || got.Error == nil || got.Error.Code != "voided" {
		t.Fatalf("void: %d %+v %+v", code, got, got.Error)
	}
	e.down.Store(false)
	waitHighWater(t, e, got.Sequence)
	l, ok := e.ledger("k-void")
	if !ok || l.State != "voided" || l.Captured != 0 {
		t.Errorf("ledger %+v (found %v), want voided, nothing captured", l, ok)
	}
	var eb ErrorBody
	a := e.create(100, "k-approved-cancel", ModeScan)
	e.scan(wechatCode)
	e.wait(a.ID, done)
	if code := e.do("POST", "/v1/payments/"+a.ID+"/cancel", nil, &eb); code != 409 || !strings.Contains(eb.Error.Message, "refund") {
		t.Errorf("cancel of an approved payment: %d %+v", code, eb)
	}
}

// A merchant-presented order canceled at the counter is closed at the acquirer; when the
// customer's payment raced the close (a reference ending in -RACE), the acquirer refunds it
// and the terminal reports it: an event and a printed notice. Nobody pays for goods they
// did not get.
func TestAgent_MerchantOrderClosedOnCancel(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Checkout.OrderPoll = Dur(time.Hour) }) // the race, not the poll, decides
	ev := e.subscribe("")
	var p Payment
	if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: 880, IdempotencyKey: "k-race", Mode: ModeQR, Reference: "O-7-RACE"}, &p); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var got Payment
	if code := e.do("POST", "/v1/payments/"+p.ID+"/cancel", nil, &got); code != 200 || got.State != PaymentCanceled {
		t.Fatalf("cancel: %d %+v", code, got)
	}
	m := ev.next(t, "order", func(m map[string]any) bool { return m["payment_id"] == p.ID }).Data.(map[string]any)
	if m["event"] != "paid_after_cancel_refunded" || m["refunded"] != true {
		t.Errorf("order event %v", m)
	}
	notice := waitJob(t, e, "PAID AFTER CANCEL")
	if !strings.Contains(notice, "O-7-RACE") || !strings.Contains(notice, "8.80") {
		t.Errorf("notice:\n%s", notice)
	}
	e.waitReversals()
	l, ok := e.ledger("k-race")
	if !ok || l.Captured != 0 {
		t.Errorf("ledger %+v (found %v), want nothing captured", l, ok)
	}
}
