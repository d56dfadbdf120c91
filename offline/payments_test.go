package offline

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent"
)

func TestJournal_PaymentsOneLedger(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "journal.db"), Options{Policy: testPolicy()})
	pay := &PaymentRow{ID: "p1", IdempotencyKey: "k1", State: "waiting", Data: []byte(`{"id":"p1"}`)}
	if err := j.CreatePayment(ctx, pay); err != nil {
		t.Fatal(err)
	}
	if err := j.CreatePayment(ctx, &PaymentRow{ID: "p2", IdempotencyKey: "k1", State: "waiting", Data: []byte(`{}`)}); !errors.Is(err, ErrPaymentExists) {
		t.Fatalf("same key again: got %v, want ErrPaymentExists", err)
	}

	// The sale and its payment are written together.
	pay.State = "waiting"
	rec, _, err := j.AppendWith(ctx, sale("k1", 500, false), pay)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.PaymentBySale(ctx, rec.ID)
	if err != nil || got.ID != "p1" || got.SaleID != rec.ID {
		t.Fatalf("payment by sale: %+v %v", got, err)
	}

	// A commit that the journal refuses (an illegal transition) writes nothing of the payment.
	pay.State = "approved"
	if err := j.Commit(ctx, SaleChange{SaleID: rec.ID, To: posagent.StateUploading}, pay); !errors.Is(err, posagent.ErrTransition) {
		t.Fatalf("illegal move: got %v", err)
	}
	if got, _ := j.Payment(ctx, "p1"); got.State != "waiting" {
		t.Errorf("payment after a refused commit: got %s, want waiting", got.State)
	}

	// A reversal is journaled with the failure, and acknowledged later.
	pay.State, pay.Done = "failed", true
	if err := j.Commit(ctx, SaleChange{SaleID: rec.ID, To: posagent.StateFailed, Note: "reversed", Reverse: "no answer"}, pay); err != nil {
		t.Fatal(err)
	}
	r, _ := j.Get(ctx, rec.ID)
	if r.State != posagent.StateFailed {
		t.Errorf("sale: got %s, want failed", r.State)
	}
	revs, err := j.PendingReversals(ctx)
	if err != nil || len(revs) != 1 || revs[0].SaleID != rec.ID || revs[0].Reason != "no answer" {
		t.Fatalf("pending reversals: %+v %v", revs, err)
	}
	if err := j.NoteReversalError(ctx, rec.ID, "acquirer down"); err != nil {
		t.Fatal(err)
	}
	if err := j.AckReversal(ctx, rec.ID, "approved"); err != nil {
		t.Fatal(err)
	}
	if revs, _ := j.PendingReversals(ctx); len(revs) != 0 {
		t.Errorf("after ack: %d pending", len(revs))
	}
	rv, err := j.GetReversal(ctx, rec.ID)
	if err != nil || rv.Answer != "approved" || rv.Attempts != 2 || rv.AckedAt.IsZero() {
		t.Errorf("reversal: %+v %v", rv, err)
	}
	if open, _ := j.OpenPayments(ctx); len(open) != 0 {
		t.Errorf("open payments: %d, want 0", len(open))
	}
}

func TestJournal_OfflinePaymentFollowsItsRecord(t *testing.T) {
	ctx := context.Background()
	j := openTest(t, filepath.Join(t.TempDir(), "journal.db"), Options{Policy: testPolicy()})
	pay := &PaymentRow{ID: "p1", IdempotencyKey: "k1", State: "stored", Done: true, Data: []byte(`{}`)}
	rec, _, err := j.AppendWith(ctx, sale("k1", 500, true), pay)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		to   posagent.State
		want string
	}{{posagent.StateUploading, "uploading"}, {posagent.StateDeclined, "declined"}} {
		if _, err := j.Transition(ctx, rec.ID, step.to, "upload"); err != nil {
			t.Fatal(err)
		}
		got, _ := j.Payment(ctx, "p1")
		if got.State != step.want {
			t.Errorf("after %s: payment %s, want %s", step.to, got.State, step.want)
		}
	}
	// Writing the payment as the counter left it (a receipt's outcome) keeps the settled state.
	pay.State = "stored"
	if err := j.SavePayment(ctx, pay); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.Payment(ctx, "p1"); got.State != "declined" {
		t.Errorf("after saving the counter's copy: %s, want declined", got.State)
	}
}
