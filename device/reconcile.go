package device

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/checkout"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
	"github.com/posagent/posagent/sync/wire"
)

// kickReconcile asks the reconciler to run now (a reversal was journaled).
func (a *Agent) kickReconcile() {
	select {
	case a.recKick <- struct{}{}:
	default:
	}
}

// reconcileLoop sends the journal's unacknowledged reversals until the acquirer
// acknowledges them (across restarts and outages: they are journaled), and resolves sales
// left authorizing that no session is resolving, at start and every sync interval.
func (a *Agent) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Acquirer.SyncInterval.D())
	defer t.Stop()
	for {
		a.reconcile(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.recKick:
		}
	}
}

// Reconcile runs one round of the reconciler: what it does in the background, for tests
// and the CLI.
func (a *Agent) reconcile(ctx context.Context) {
	if a.journal.NeedsRebase() != "" {
		if err := a.rebase(ctx); err != nil {
			a.log.Warn("journal: cannot continue the acquirer's chain yet", "err", err)
		}
	}
	revs, err := a.journal.PendingReversals(ctx)
	if err != nil {
		a.log.Error("reconcile: read reversals", "err", err)
	}
	for _, r := range revs {
		if ctx.Err() != nil {
			return
		}
		a.sendReversal(ctx, r)
	}
	recs, err := a.journal.List(ctx, offline.Filter{State: posagent.StateAuthorizing})
	if err != nil {
		a.log.Error("reconcile: read journal", "err", err)
		return
	}
	for _, rec := range recs {
		if _, busy := a.resolving.Load(rec.ID); busy || a.owns(rec.ID) {
			continue
		}
		if rec.Kind == posagent.KindRefund {
			// A refund left authorizing (a stop mid-request) is forwarded with the next sync:
			// the acquirer keeps any decision it made under the same key.
			if _, busy := a.refunding.Load(rec.ID); !busy {
				if _, err := a.journal.Transition(ctx, rec.ID, posagent.StateStored, "resumed: forwarded with the next sync"); err != nil {
					a.log.Error("reconcile: refund not stored", "sequence", rec.Sequence, "err", err)
				}
			}
			continue
		}
		a.resolveOrphan(ctx, rec)
	}
}

// owns reports whether a session (the open payment) has the sale.
func (a *Agent) owns(saleID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cur != nil && a.cur.p.SaleID == saleID
}

// sendReversal sends one journaled reversal and records the acknowledgement.
func (a *Agent) sendReversal(ctx context.Context, r offline.Reversal) {
	rec, err := a.journal.Get(ctx, r.SaleID)
	if err != nil {
		a.log.Error("reconcile: reversal of a sale not in the journal", "sale", r.SaleID, "err", err)
		return
	}
	if rec.Method == posagent.MethodMerchantQR {
		a.closeOrder(ctx, r, rec)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Acquirer.RequestTimeout.D())
	resp, err := a.client.Reverse(rctx, wire.ReversalRequest{ID: rec.ID, Sequence: rec.Sequence, IdempotencyKey: rec.IdempotencyKey,
		Amount: rec.Amount.Minor, Currency: rec.Amount.Currency.Code, Reason: r.Reason})
	cancel()
	if err != nil {
		a.noteAcquirerError(err)
		if nerr := a.journal.NoteReversalError(ctx, r.SaleID, err.Error()); nerr != nil {
			a.log.Error("reconcile: note reversal error", "err", nerr)
		}
		a.log.Warn("reversal not acknowledged yet; retried", "sequence", rec.Sequence, "attempts", r.Attempts+1, "err", err)
		return
	}
	if err := a.journal.AckReversal(ctx, r.SaleID, resp.Previous); err != nil {
		a.log.Error("reconcile: acknowledge reversal", "sequence", rec.Sequence, "err", err)
		return
	}
	a.log.Info("reversal acknowledged", "sequence", rec.Sequence, "was", resp.Previous)
	ev := map[string]any{"event": "reversed", "sale_id": rec.ID, "sequence": rec.Sequence, "amount": rec.Amount.Minor,
		"currency": rec.Amount.Currency.Code, "was": resp.Previous}
	if row, err := a.journal.PaymentBySale(ctx, rec.ID); err == nil {
		ev["payment_id"] = row.ID
	}
	a.events.publish("reversal", ev)
}

// resolveOrphan resolves a sale found authorizing that no session has: a payment the
// restart left in the background, or a sale whose payment could not be written. It runs
// the checkout core in a background session until the sale has its outcome.
func (a *Agent) resolveOrphan(ctx context.Context, rec offline.Record) {
	var p *Payment
	var m checkout.Payment
	if row, err := a.journal.PaymentBySale(ctx, rec.ID); err == nil {
		if p, m, err = decodePayment(row); err != nil {
			p = nil
		}
	}
	if p == nil {
		// No readable payment: one is made from the record, so the outcome has a home.
		p = &Payment{ID: "sale-" + rec.ID, IdempotencyKey: rec.IdempotencyKey, Amount: rec.Amount.Minor, Currency: rec.Amount.Currency.Code,
			Mode: ModeScan, Method: string(rec.Method), Scheme: string(rec.Scheme), Credential: rec.CredentialMasked,
			Reference: rec.Reference, CreatedAt: rec.CapturedAt, UpdatedAt: a.now().UTC(), SaleID: rec.ID}
		if rec.Method == posagent.MethodMerchantQR {
			p.Mode, p.OrderReference = ModeQR, rec.Reference
		}
	}
	p.SaleID, p.Sequence = rec.ID, rec.Sequence
	if m.Mode == "" {
		m = coreOf(p)
	}
	m.Journaled = true
	if !m.State.Open() || m.State == checkout.Waiting && p.Mode == ModeScan {
		m.State = checkout.Authorizing
	}
	if p.Mode == ModeQR {
		m.State = checkout.Waiting
	}
	p.State = m.State
	s := a.newSession(p, m, true)
	if cred, err := a.journal.Credential(ctx, rec.ID); err == nil {
		s.cls, s.credential, s.method = qr.Classify(cred), cred, rec.Method
	}
	if _, loaded := a.resolving.LoadOrStore(rec.ID, struct{}{}); loaded {
		return
	}
	a.log.Info("reconciler resolves a sale left authorizing", "sequence", rec.Sequence, "payment", p.ID)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.resolving.Delete(rec.ID)
		defer close(s.done)
		a.drive(s, checkout.Resumed{})
	}()
}

// ping is one authenticated ping; it measures the clock skew against the acquirer's
// server time (half the round trip allowed for) and signs later requests with the
// corrected time, so a terminal without a battery-backed clock still syncs.
func (a *Agent) ping(ctx context.Context) error {
	sent := time.Now()
	pg, err := a.client.Ping(ctx)
	if err != nil {
		return err
	}
	rtt := time.Since(sent)
	if !pg.ServerTime.IsZero() {
		if rtt > 2*time.Second {
			return nil // too slow to measure
		}
		skew := pg.ServerTime.Sub(sent.Add(rtt / 2))
		old := time.Duration(a.skew.Swap(int64(skew)))
		if d := skew - old; d > time.Second || d < -time.Second {
			a.log.Warn("clock skew against the acquirer", "skew", skew.Round(time.Millisecond).String())
		}
	}
	return nil
}

// Skew is the acquirer's clock minus the terminal's, from the last ping.
func (a *Agent) Skew() time.Duration { return time.Duration(a.skew.Load()) }

// signingNow is the time requests are signed with: the local clock corrected by the skew.
func (a *Agent) signingNow() time.Time { return time.Now().Add(a.Skew()) }

// maintainLoop keeps the journal bounded: it purges records past the retention period and
// checkpoints the WAL, at start and every maintenance interval.
func (a *Agent) maintainLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Maintenance.Interval.D())
	defer t.Stop()
	for {
		n, err := a.journal.Purge(ctx, a.now())
		switch {
		case err != nil && ctx.Err() == nil:
			a.log.Error("journal purge", "err", err)
			a.metrics.journalError()
		case n > 0:
			a.log.Info("journal purged", "records", n)
		case err == nil:
			if err := a.journal.Checkpoint(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("journal checkpoint", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rebase makes a journal that replaced a damaged one continue the chain the acquirer
// holds (its highest sequence and that record's hash), so new records neither collide with
// the damaged journal's nor fork the chain. Until it succeeds, no sale can be journaled.
func (a *Agent) rebase(ctx context.Context) error {
	a.rebaseMu.Lock()
	defer a.rebaseMu.Unlock()
	if a.journal.NeedsRebase() == "" {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Acquirer.RequestTimeout.D())
	head, err := a.client.ChainHead(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("ask the acquirer where the chain ends: %w", err)
	}
	hash, err := hex.DecodeString(head.Hash)
	if err != nil {
		return fmt.Errorf("the acquirer's chain head hash %q: %w", head.Hash, err)
	}
	if err := a.journal.Rebase(ctx, head.Sequence, hash); err != nil {
		return err
	}
	a.log.Warn("journal replaced after damage continues the acquirer's chain", "after_sequence", head.Sequence)
	a.events.publish("journal", map[string]any{"event": "rebased", "after_sequence": head.Sequence})
	return nil
}

// closeOrder closes a merchant-presented order canceled at the counter or not paid in
// time (its reversal). A customer whose payment raced the close is refunded by the
// acquirer; the terminal reports it: an event, the log and a printed notice.
func (a *Agent) closeOrder(ctx context.Context, r offline.Reversal, rec offline.Record) {
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Acquirer.RequestTimeout.D())
	resp, err := a.client.CloseOrder(rctx, rec.Reference)
	cancel()
	if err != nil {
		a.noteAcquirerError(err)
		if nerr := a.journal.NoteReversalError(ctx, r.SaleID, err.Error()); nerr != nil {
			a.log.Error("reconcile: note order close error", "err", nerr)
		}
		a.log.Warn("order close not acknowledged yet; retried", "order", rec.Reference, "attempts", r.Attempts+1, "err", err)
		return
	}
	if err := a.journal.AckReversal(ctx, r.SaleID, resp.State); err != nil {
		a.log.Error("reconcile: acknowledge order close", "order", rec.Reference, "err", err)
		return
	}
	ev := map[string]any{"event": "order_closed", "order_reference": rec.Reference, "sale_id": rec.ID, "sequence": rec.Sequence,
		"state": resp.State, "refunded": resp.Refunded, "amount": rec.Amount.Minor, "currency": rec.Amount.Currency.Code}
	if row, err := a.journal.PaymentBySale(ctx, rec.ID); err == nil {
		ev["payment_id"] = row.ID
	}
	if !resp.Refunded {
		a.log.Info("order closed at the acquirer", "order", rec.Reference, "state", resp.State)
		a.events.publish("order", ev)
		return
	}
	ev["event"] = "paid_after_cancel_refunded"
	a.log.Warn("the customer paid the order after it was canceled: the acquirer refunded it", "order", rec.Reference,
		"amount", rec.Amount.String(), "currency", rec.Amount.Currency.Code)
	a.events.publish("order", ev)
	if a.dev.printer == nil {
		return
	}
	notice := &posagent.Receipt{Currency: rec.Amount.Currency.Code, Header: []string{"PAID AFTER CANCEL", "REFUNDED"},
		Lines: []string{"Order: " + rec.Reference, fmt.Sprintf("Sale no.: %d", rec.Sequence),
			"The customer paid after the order", "was canceled. The acquirer refunded", "the payment: no goods are owed."},
		Totals: []posagent.ReceiptLine{{Label: "Refunded", Amount: rec.Amount.Minor}}}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		pctx, cancel := context.WithTimeout(a.hardCtx, time.Minute)
		defer cancel()
		if _, err := a.dev.printer.Print(pctx, notice); err != nil {
			a.log.Warn("refund notice not printed", "order", rec.Reference, "err", err)
		}
	}()
}
