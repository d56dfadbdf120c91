package offline

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent"
)

func refund(key, parent string, minor int64) NewSale {
	return NewSale{IdempotencyKey: key, Amount: posagent.Amount{Minor: minor, Currency: cny}, Method: posagent.MethodWalletCode,
		Scheme: posagent.SchemeWeChatPay, Kind: posagent.KindRefund, Parent: parent}
}

func TestJournal_Refunds(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "journal.db"), Options{Policy: testPolicy()})
	s := mustAppend(t, j, sale("k-sale", 1000, false))
	if _, _, err := j.Append(ctx, refund("r-early", s.ID, 100)); !errors.Is(err, ErrRefund) {
		t.Fatalf("refund of a sale being authorized: %v, want ErrRefund", err)
	}
	if _, err := j.Transition(ctx, s.ID, posagent.StateApproved, "approved"); err != nil {
		t.Fatal(err)
	}
	r1 := mustAppend(t, j, refund("r1", s.ID, 600))
	if r1.Kind != posagent.KindRefund || r1.Parent != s.ID || r1.Sequence != s.Sequence+1 {
		t.Errorf("refund record %+v", r1.Sale)
	}
	if _, _, err := j.Append(ctx, refund("r2", s.ID, 401)); !errors.Is(err, ErrRefund) {
		t.Errorf("over-refund: %v, want ErrRefund", err)
	}
	// A declined refund gives its amount back to what is left.
	if _, err := j.Transition(ctx, r1.ID, posagent.StateDeclined, "refused"); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, j, refund("r3", s.ID, 1000))
	other := NewSale(refund("r4", s.ID, 1))
	other.Amount.Currency, _ = posagent.LookupCurrency("USD")
	if _, _, err := j.Append(ctx, other); !errors.Is(err, ErrRefund) {
		t.Errorf("refund in another currency: %v", err)
	}
	// The same key again is the same refund; with other content it is a conflict.
	if again, created, err := j.Append(ctx, refund("r3", s.ID, 1000)); err != nil || created || again.Kind != posagent.KindRefund {
		t.Errorf("retry: %+v %v %v", again.Sale, created, err)
	}
	if _, _, err := j.Append(ctx, refund("r3", s.ID, 999)); !errors.Is(err, ErrConflict) {
		t.Errorf("same key, other amount: %v", err)
	}
	refunds, err := j.Refunds(ctx, s.ID)
	if err != nil || len(refunds) != 2 {
		t.Fatalf("refunds: %d %v", len(refunds), err)
	}
	rep, err := j.Verify(ctx)
	if err != nil || rep.Broken != nil || rep.Records != 3 {
		t.Errorf("verify with refunds: %+v %v", rep, err)
	}
}

func TestEntry_RefundRoundTrip(t *testing.T) {
	e := testEntry()
	e.Kind, e.Parent = posagent.KindRefund, "0195f3c2-7b1a-7cc0-8a6e-000000000001"
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 2 {
		t.Errorf("a refund's version: got %d, want 2", b[0])
	}
	var got Entry
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if got.Kind != e.Kind || got.Parent != e.Parent || got.Amount != e.Amount {
		t.Errorf("round trip: got %+v", got)
	}
	sale := testEntry()
	sb, _ := sale.MarshalBinary()
	if sb[0] != 1 {
		t.Errorf("a sale's version: got %d, want 1 (chains from before refunds verify unchanged)", sb[0])
	}
	// A sale dressed as version 2 is not canonical.
	forged := append([]byte{2}, sb[1:]...)
	forged = append(forged, 0, 0, 0, 4, 's', 'a', 'l', 'e', 0, 0, 0, 0)
	if err := got.UnmarshalBinary(forged); !errors.Is(err, ErrEncoding) {
		t.Errorf("a sale as version 2: %v, want ErrEncoding", err)
	}
}
