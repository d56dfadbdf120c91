package device

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// RefundRequest is POST /v1/payments/{id}/refunds.
type RefundRequest struct {
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency,omitempty"` // the payment's when empty; another is refused
	IdempotencyKey string `json:"idempotency_key"`
	Reason         string `json:"reason,omitempty"`
}

// Refund is a refund of a payment, as the local API shows it. Its states: authorizing (sent
// to the acquirer), approved (the money goes back), stored (the acquirer was unreachable:
// it is forwarded with the next sync, and approved or declined then), uploading, declined
// (the acquirer refused; error says why), failed.
type Refund struct {
	ID             string     `json:"id"` // the journal record
	PaymentID      string     `json:"payment_id"`
	Sequence       uint64     `json:"sequence"`
	State          string     `json:"state"`
	Amount         int64      `json:"amount"`
	Currency       string     `json:"currency"`
	IdempotencyKey string     `json:"idempotency_key"`
	Reason         string     `json:"reason,omitempty"`
	Error          *ErrorInfo `json:"error,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func (r *RefundRequest) validate() error {
	invalid := func(format string, args ...any) error {
		return &apiError{422, "invalid", fmt.Sprintf(format, args...)}
	}
	switch {
	case r.Amount <= 0 || r.Amount > 1e12:
		return invalid("amount %d must be a positive number of minor units (at most 10^12)", r.Amount)
	case r.IdempotencyKey == "" || len(r.IdempotencyKey) > 128 || !printable(r.IdempotencyKey):
		return invalid("idempotency_key must be 1-128 printable characters (a retry with the same key is a look-up, never a second refund)")
	case len(r.Reason) > 128 || !printable(r.Reason):
		return invalid("reason must be at most 128 printable characters")
	}
	return nil
}

// CreateRefund refunds all or part of an approved payment: journaled first (in the
// sales' chain, refused there when it would exceed what is left), then sent to the
// acquirer; when the acquirer does not answer, it is stored and forwarded with the next
// sync (no customer waits for it). The same idempotency key again returns the same
// refund (replay true); with other content it is a conflict.
func (a *Agent) CreateRefund(ctx context.Context, paymentID string, req RefundRequest) (*Refund, bool, error) {
	if err := req.validate(); err != nil {
		return nil, false, err
	}
	p, err := a.payment(ctx, paymentID, "")
	if err != nil {
		return nil, false, err
	}
	if req.Currency == "" {
		req.Currency = p.Currency
	}
	if req.Currency != p.Currency {
		return nil, false, &apiError{422, "currency_mismatch", fmt.Sprintf("the payment is in %s, the refund in %s: refund in the payment's currency", p.Currency, req.Currency)}
	}
	if rec, err := a.journal.ByIdempotencyKey(ctx, req.IdempotencyKey); err == nil {
		if rec.Kind != posagent.KindRefund || rec.Parent != p.SaleID || rec.Amount.Minor != req.Amount {
			return nil, false, &apiError{409, "idempotency_conflict", fmt.Sprintf("idempotency key %q was used for another refund or sale (sequence %d)", req.IdempotencyKey, rec.Sequence)}
		}
		return refundOf(rec, p.ID, req.Reason), true, nil
	}
	if p.State != PaymentApproved || p.SaleID == "" {
		hint := "only an approved payment can be refunded"
		if p.State == PaymentStored || p.State == PaymentUploading {
			hint = "it was accepted offline and is not approved yet: refund it once it is, or cancel it to void it before it is sent"
		}
		return nil, false, &apiError{409, "not_refundable", fmt.Sprintf("payment %s is %s: %s", p.ID, p.State, hint)}
	}
	cur := mustCurrency(p.Currency)
	method := posagent.Method(p.Method)
	if method == "" {
		method = posagent.MethodWalletCode
	}
	rec, created, err := a.journal.Append(ctx, offline.NewSale{
		IdempotencyKey: req.IdempotencyKey, Reference: req.Reason, Amount: posagent.Amount{Minor: req.Amount, Currency: cur},
		Method: method, Scheme: posagent.Scheme(p.Scheme), Kind: posagent.KindRefund, Parent: p.SaleID,
	})
	var re *offline.RefundError
	switch {
	case errors.As(err, &re):
		return nil, false, &apiError{422, "refund_refused", re.Msg}
	case errors.Is(err, offline.ErrConflict):
		return nil, false, &apiError{409, "idempotency_conflict", err.Error()}
	case err != nil:
		e := journalError(err)
		return nil, false, &apiError{503, e.Code, "cannot record the refund: " + e.Message}
	case !created:
		return refundOf(rec, p.ID, req.Reason), true, nil
	}
	a.refunding.Store(rec.ID, struct{}{})
	rec = a.sendRefund(ctx, rec, req.Reason)
	a.refunding.Delete(rec.ID)
	rf := refundOf(rec, p.ID, req.Reason)
	a.announceRefund(rf, p)
	return rf, false, nil
}

// sendRefund sends a journaled refund online and records the answer; without one it is
// stored, to be forwarded with the next sync (the acquirer keeps the decision it may have
// made under the same idempotency key).
func (a *Agent) sendRefund(ctx context.Context, rec offline.Record, reason string) offline.Record {
	jctx := context.Background()
	if a.online.Load() {
		rctx, cancel := context.WithTimeout(ctx, a.cfg.Acquirer.AuthTimeout.D())
		resp, err := a.authClient.Refund(rctx, wire.RefundRequest{ID: rec.ID, Sequence: rec.Sequence, IdempotencyKey: rec.IdempotencyKey,
			SaleID: rec.Parent, Amount: rec.Amount.Minor, Currency: rec.Amount.Currency.Code, Reason: reason, CapturedAt: rec.CapturedAt})
		cancel()
		var ae *uplink.APIError
		switch {
		case err == nil && resp.Decision == wire.Approved:
			a.setOnline(true, nil)
			if r, err := a.journal.Transition(jctx, rec.ID, posagent.StateApproved, "refund approved online"); err == nil {
				return r
			} else {
				a.log.Error("journal: refund outcome not recorded", "sequence", rec.Sequence, "err", err)
			}
			return rec
		case err == nil:
			a.setOnline(true, nil)
			why := resp.Reason
			if why == "" {
				why = "refused by the acquirer"
			}
			if r, err := a.journal.Transition(jctx, rec.ID, posagent.StateDeclined, why); err == nil {
				return r
			}
			return rec
		case errors.As(err, &ae) && ae.Status/100 == 4 && ae.Status != http.StatusTooManyRequests && ae.Status != http.StatusRequestTimeout:
			msg := "the acquirer refused the refund: " + err.Error()
			if r, err := a.journal.Transition(jctx, rec.ID, posagent.StateFailed, msg); err == nil {
				return r
			}
			return rec
		default:
			a.noteAcquirerError(err)
			a.log.Warn("refund without an answer: stored, forwarded with the next sync", "sequence", rec.Sequence, "err", err)
		}
	}
	r, err := a.journal.Transition(jctx, rec.ID, posagent.StateStored, "acquirer unreachable: forwarded with the next sync")
	if err != nil {
		a.log.Error("journal: refund not stored for forwarding; the reconciler retries", "sequence", rec.Sequence, "err", err)
		return rec
	}
	a.kickSync()
	return r
}

// refundOf is the API's view of a refund record.
func refundOf(r offline.Record, paymentID, reason string) *Refund {
	rf := &Refund{ID: r.ID, PaymentID: paymentID, Sequence: r.Sequence, State: string(r.State), Amount: r.Amount.Minor,
		Currency: r.Amount.Currency.Code, IdempotencyKey: r.IdempotencyKey, Reason: r.Reference, CreatedAt: r.CapturedAt, UpdatedAt: r.UpdatedAt}
	if rf.Reason == "" {
		rf.Reason = reason
	}
	if r.State == posagent.StateDeclined || r.State == posagent.StateFailed {
		rf.Error = &ErrorInfo{Code: "refund_" + string(r.State), Message: r.LastError}
	}
	return rf
}

// announceRefund publishes a refund and prints its slip when the money goes back (or will).
func (a *Agent) announceRefund(rf *Refund, p *Payment) {
	a.events.publish("refund", rf)
	a.log.Info("refund "+rf.State, "payment", rf.PaymentID, "sequence", rf.Sequence, "amount", rf.Amount, "currency", rf.Currency)
	if rf.State != string(posagent.StateApproved) && rf.State != string(posagent.StateStored) {
		return
	}
	if a.dev.printer == nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		ctx, cancel := context.WithTimeout(a.hardCtx, time.Minute)
		defer cancel()
		if _, err := a.dev.printer.Print(ctx, a.refundSlip(rf, p)); err != nil {
			a.log.Warn("refund slip not printed", "sequence", rf.Sequence, "err", err)
		}
	}()
}

// refundSlip is the receipt of a refund.
func (a *Agent) refundSlip(rf *Refund, p *Payment) *posagent.Receipt {
	m := a.cfg.Merchant
	rc := &posagent.Receipt{Currency: rf.Currency, Header: append([]string{"REFUND"}, m.Header...), Footer: append([]string(nil), m.Footer...)}
	lines := []string{"Date: " + rf.UpdatedAt.Local().Format("2006-01-02 15:04:05"), "Terminal: " + a.cfg.Terminal,
		fmt.Sprintf("Refund no.: %d", rf.Sequence), fmt.Sprintf("Of sale no.: %d", p.Sequence)}
	if p.Reference != "" {
		lines = append(lines, "Ref: "+p.Reference)
	}
	if rf.Reason != "" {
		lines = append(lines, "Reason: "+rf.Reason)
	}
	if rf.State == string(posagent.StateStored) {
		lines = append(lines, "Sent to the acquirer with the next sync.")
	}
	rc.Lines = lines
	rc.Totals = []posagent.ReceiptLine{{Label: "Refund", Amount: rf.Amount}}
	return rc
}

// refunds fills a payment's refunds from the journal.
func (a *Agent) fillRefunds(ctx context.Context, p *Payment) {
	if p.SaleID == "" {
		return
	}
	recs, err := a.journal.Refunds(ctx, p.SaleID)
	if err != nil || len(recs) == 0 {
		return
	}
	p.Refunds = p.Refunds[:0]
	p.RefundedAmount, p.PendingRefundAmount = 0, 0
	for _, r := range recs {
		rf := refundOf(r, p.ID, "")
		p.Refunds = append(p.Refunds, *rf)
		switch r.State {
		case posagent.StateApproved:
			p.RefundedAmount += r.Amount.Minor
		case posagent.StateAuthorizing, posagent.StateStored, posagent.StateUploading:
			p.PendingRefundAmount += r.Amount.Minor
		}
	}
}

func (a *Agent) handleRefund(w http.ResponseWriter, r *http.Request) {
	var req RefundRequest
	if err := DecodeJSON(r.Body, maxBody, &req); err != nil {
		writeErr(w, err)
		return
	}
	if !headerKey(w, r, &req.IdempotencyKey) {
		return
	}
	rf, replay, err := a.CreateRefund(r.Context(), r.PathValue("id"), req)
	if err != nil {
		writeErr(w, err)
		return
	}
	if replay {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusCreated, rf)
}
