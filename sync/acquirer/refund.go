package acquirer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/sync/wire"
)

// Refunds, merchant-presented order closes and totals: the logic written once for both
// stores, inside their transactions. A store calls refundTx under its writer lock (SQLite's
// one writer; PostgreSQL's per-terminal advisory lock), so two refunds of one sale
// serialise and cannot together exceed what was captured.

// Where a refund was decided (refunds.source).
const (
	refundOnline = "online" // POST /v1/refunds
	refundBatch  = "batch"  // a refund record uploaded in state stored or uploading
)

// refundIdentity is what makes two refund requests "the same refund": everything but the
// reason and the capture time (a refund record in a batch carries neither the same way).
type refundIdentity struct {
	ID       string `json:"id"`
	Sequence uint64 `json:"sequence"`
	Key      string `json:"idempotency_key"`
	SaleID   string `json:"sale_id"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func refundContent(req wire.RefundRequest) string {
	return contentHash(refundIdentity{req.ID, req.Sequence, req.IdempotencyKey, req.SaleID, req.Amount, req.Currency})
}

// refundOfRecord is the refund request a refund record stands for.
func refundOfRecord(rec wire.Record) wire.RefundRequest {
	return wire.RefundRequest{ID: rec.ID, Sequence: rec.Sequence, IdempotencyKey: rec.IdempotencyKey, SaleID: rec.Parent,
		Amount: rec.Amount, Currency: rec.Currency, CapturedAt: rec.CapturedAt}
}

// isRefund reports whether a record is a refund (kind "refund").
func isRefund(rec wire.Record) bool { return rec.Kind == string(posagent.KindRefund) }

// refundTx is Store.Refund for both stores (source refundOnline) and the decision of a
// refund record in a batch (refundBatch): the answer stored before for the same terminal
// and idempotency key (ErrConflict when its content differs, or when the refund's id is
// already used under another key), else a new decision by the rules, stored for ever.
func refundTx(ctx context.Context, tx execer, d dialect, terminal string, req wire.RefundRequest, source string, now time.Time) (wire.RefundResponse, error) {
	var resp wire.RefundResponse
	content := refundContent(req)
	var stored, body string
	err := tx.QueryRowContext(ctx, d.q(`SELECT content, response FROM refunds WHERE terminal = ? AND idempotency_key = ?`), terminal, req.IdempotencyKey).
		Scan(&stored, &body)
	switch {
	case err == nil && stored == content:
		err := json.Unmarshal([]byte(body), &resp)
		return resp, err
	case err == nil:
		return resp, fmt.Errorf("refund idempotency key %q was used for another refund: %w", req.IdempotencyKey, ErrConflict)
	case !errors.Is(err, sql.ErrNoRows):
		return resp, fmt.Errorf("read refund: %w", err)
	}
	var otherKey string
	err = tx.QueryRowContext(ctx, d.q(`SELECT idempotency_key FROM refunds WHERE terminal = ? AND refund_id = ?`), terminal, req.ID).Scan(&otherKey)
	if err == nil {
		return resp, fmt.Errorf("refund %s was made under another idempotency key (%q): %w", req.ID, otherKey, ErrConflict)
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return resp, fmt.Errorf("read refund: %w", err)
	}
	sale, found, err := saleOf(ctx, tx, d, terminal, req.SaleID, now)
	if err != nil {
		return resp, err
	}
	var refunded int64
	if err := tx.QueryRowContext(ctx, d.q(`SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM refunds WHERE terminal = ? AND sale_id = ? AND decision = 'approved'`),
		terminal, req.SaleID).Scan(&refunded); err != nil {
		return resp, fmt.Errorf("sum refunds: %w", err)
	}
	resp = wire.RefundResponse{ID: req.ID, SaleID: req.SaleID, Decision: wire.Declined, Refunded: refunded, DecidedAt: now.UTC()}
	approvedSale := found && sale.State == string(wire.Approved)
	left := sale.Amount - refunded
	switch {
	case !found:
		resp.Reason = fmt.Sprintf("sale %s is unknown to the acquirer for terminal %s", req.SaleID, terminal)
	case sale.State == "refund":
		resp.Reason = fmt.Sprintf("%s is a refund, not a sale", req.SaleID)
	case !approvedSale:
		resp.Reason = fmt.Sprintf("sale %s is %s, not approved: nothing was captured to refund", req.SaleID, sale.State)
	case sale.Currency != req.Currency:
		resp.Reason = fmt.Sprintf("sale %s was captured in %s, the refund is in %s", req.SaleID, sale.Currency, req.Currency)
	case req.Amount > left:
		resp.Reason = fmt.Sprintf("refund of %d exceeds what is left of sale %s: %d of %d %s (%d refunded)", req.Amount, req.SaleID, left, sale.Amount, sale.Currency, refunded)
	default:
		resp.Decision = wire.Approved
		resp.Refunded += req.Amount
	}
	if approvedSale {
		resp.Captured = sale.Amount - resp.Refunded
	}
	captured := req.CapturedAt
	if captured.IsZero() {
		captured = now
	}
	b, _ := json.Marshal(resp)
	_, err = tx.ExecContext(ctx, d.q(`INSERT INTO refunds (terminal, idempotency_key, content, refund_id, sale_id, sequence, amount, currency,
		decision, reason, response, source, captured_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		terminal, req.IdempotencyKey, content, req.ID, req.SaleID, int64(req.Sequence), req.Amount, req.Currency,
		string(resp.Decision), req.Reason, string(b), source, captured.UnixMilli(), d.timestamp(now))
	return resp, err
}

// refundRecordResult decides a refund record uploaded in state stored or uploading, for
// the results feed. A refund already decided online (same idempotency key) keeps that
// decision; a key reused with other content declines the record.
func refundRecordResult(ctx context.Context, tx execer, d dialect, terminal string, rec wire.Record, now time.Time) (wire.Result, error) {
	r := wire.Result{ID: rec.ID, Sequence: rec.Sequence, DecidedAt: now.UTC()}
	resp, err := refundTx(ctx, tx, d, terminal, refundOfRecord(rec), refundBatch, now)
	if errors.Is(err, ErrConflict) {
		r.Decision, r.Reason = wire.Declined, "conflict: "+err.Error()
		return r, nil
	}
	if err != nil {
		return r, err
	}
	r.Decision, r.Reason, r.DecidedAt = resp.Decision, resp.Reason, resp.DecidedAt
	return r, nil
}

// saleOf returns the sale id of terminal as the ledger shows it (state, amount, currency):
// its online authorization, or its uploaded record (a merchant-presented one by its order,
// an offline one by its deferred result). found is false when the acquirer knows neither;
// a refund record's state is "refund".
func saleOf(ctx context.Context, tx execer, d dialect, terminal, id string, now time.Time) (e wire.LedgerEntry, found bool, err error) {
	e = wire.LedgerEntry{Terminal: terminal, SaleID: id}
	fromAuth := func(a *authRow) (wire.LedgerEntry, bool, error) {
		e.Sequence, e.IdempotencyKey, e.Amount, e.Currency, e.State, e.Source = uint64(a.sequence), a.key, a.amount, a.currency, a.state, "online"
		return e, true, nil
	}
	if err := resolveDue(ctx, tx, d, terminal, "sale_id", id, now); err != nil {
		return e, false, err
	}
	a, err := loadAuth(ctx, tx, d, terminal, "sale_id", id)
	if err != nil {
		return e, false, err
	}
	if a != nil {
		return fromAuth(a)
	}
	var body string
	err = tx.QueryRowContext(ctx, d.q(`SELECT body FROM records WHERE terminal = ? AND id = ? ORDER BY sequence LIMIT 1`), terminal, id).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read sale: %w", err)
	}
	var rec wire.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return e, false, err
	}
	if isRefund(rec) {
		e.State = "refund"
		return e, true, nil
	}
	// Sent online too (its answer lost), then kept offline: the authorization stands.
	if err := resolveDue(ctx, tx, d, terminal, "idempotency_key", rec.IdempotencyKey, now); err != nil {
		return e, false, err
	}
	if a, err = loadAuth(ctx, tx, d, terminal, "idempotency_key", rec.IdempotencyKey); err != nil {
		return e, false, err
	}
	if a != nil {
		return fromAuth(a)
	}
	var result, order string
	err = tx.QueryRowContext(ctx, d.q(`SELECT body FROM results WHERE terminal = ? AND `+d.jsonField("body", "id")+` = ? ORDER BY cursor LIMIT 1`), terminal, id).Scan(&result)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return e, false, fmt.Errorf("read sale's result: %w", err)
	}
	if rec.Reference != "" {
		err = tx.QueryRowContext(ctx, d.q(`SELECT body FROM orders WHERE reference = ? AND terminal = ?`), rec.Reference, terminal).Scan(&order)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return e, false, fmt.Errorf("read sale's order: %w", err)
		}
	}
	e.Sequence, e.IdempotencyKey = rec.Sequence, rec.IdempotencyKey
	var row saleRow
	row.LedgerEntry = e
	if err := recordEntry(&row, body, result, order); err != nil {
		return e, false, err
	}
	return row.LedgerEntry, true, nil
}

// Order states the acquirer keeps (wire.Order.State).
const (
	OrderPending  = "pending"
	OrderPaid     = "paid"
	OrderClosed   = "closed"
	OrderRefunded = "refunded"
)

// closeOrderTx is Store.CloseOrder for both stores: forUpdate locks the order's row.
func closeOrderTx(ctx context.Context, tx execer, d dialect, terminal, reference string, payFirst bool, now time.Time) (wire.OrderClose, error) {
	out := wire.OrderClose{Reference: reference}
	b, _ := json.Marshal(wire.Order{Reference: reference, State: OrderPending})
	if _, err := tx.ExecContext(ctx, d.q(`INSERT INTO orders (reference, terminal, polls, body) VALUES (?, ?, 0, ?) ON CONFLICT (reference) DO NOTHING`),
		reference, terminal, string(b)); err != nil {
		return out, err
	}
	var owner, body string
	if err := tx.QueryRowContext(ctx, d.q(`SELECT terminal, body FROM orders WHERE reference = ?`+d.forUpdate()), reference).Scan(&owner, &body); err != nil {
		return out, err
	}
	if owner != terminal {
		return out, ErrNotFound
	}
	var o wire.Order
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		return out, err
	}
	if payFirst && o.State == OrderPending {
		o.State, o.Scheme, o.PaidAt = OrderPaid, string(posagent.SchemeUnionPay), now.UTC()
	}
	switch o.State {
	case OrderPending:
		o.State, out.Reason = OrderClosed, "closed before the customer paid: a later payment is refused"
	case OrderPaid:
		o.State, out.Reason = OrderRefunded, "the customer paid before the close arrived: the acquirer refunded the payment"
	case OrderClosed:
		out.Reason = "closed before the customer paid: a later payment is refused"
	case OrderRefunded:
		out.Reason = "the customer paid before the close arrived: the acquirer refunded the payment"
	default:
		out.Reason = "the order was already " + o.State + ": nothing to close"
	}
	out.State, out.Refunded = o.State, o.State == OrderRefunded
	nb, _ := json.Marshal(o)
	if _, err := tx.ExecContext(ctx, d.q(`UPDATE orders SET body = ? WHERE reference = ?`), string(nb), reference); err != nil {
		return out, err
	}
	// The amount, from the order's sale record when the terminal has uploaded it.
	var rb string
	err := tx.QueryRowContext(ctx, d.q(`SELECT body FROM records WHERE terminal = ? AND `+d.jsonField("body", "reference")+` = ?
		AND COALESCE(`+d.jsonField("body", "kind")+`, '') <> 'refund' ORDER BY sequence LIMIT 1`), terminal, reference).Scan(&rb)
	if err == nil {
		var rec wire.Record
		if err := json.Unmarshal([]byte(rb), &rec); err != nil {
			return out, err
		}
		out.Amount, out.Currency = rec.Amount, rec.Currency
	} else if !errors.Is(err, sql.ErrNoRows) {
		return out, err
	}
	return out, nil
}

// totals is Store.Totals for both stores: the terminal's ledger rows whose capture time is
// in [from, to), and its approved refunds captured in that period. It reads the
// terminal's whole ledger (rows are filtered by the capture time in their JSON bodies).
func totals(ctx context.Context, db *sql.DB, d dialect, now time.Time, terminal string, from, to time.Time) (wire.Totals, error) {
	t := wire.Totals{Terminal: terminal, From: from.UTC(), To: to.UTC(), Sales: wire.Tally{Amount: map[string]int64{}},
		ByMethod: map[string]wire.Tally{}, ByScheme: map[string]wire.Tally{}, ByState: map[string]wire.Tally{},
		Refunds: wire.Tally{Amount: map[string]int64{}}, Captured: map[string]int64{}}
	add := func(m map[string]wire.Tally, k string, amount int64, currency string) {
		v := m[k]
		v.Add(amount, currency)
		m[k] = v
	}
	err := ledgerRows(ctx, db, d, now, terminal, func(r saleRow) error {
		if r.capturedAt.Before(from) || !r.capturedAt.Before(to) {
			return nil
		}
		t.Sales.Add(r.Amount, r.Currency)
		add(t.ByState, r.State, r.Amount, r.Currency)
		if r.State == string(wire.Approved) {
			scheme := r.scheme
			if scheme == "" {
				scheme = "unknown"
			}
			add(t.ByMethod, r.method, r.Amount, r.Currency)
			add(t.ByScheme, scheme, r.Amount, r.Currency)
			t.Captured[r.Currency] += r.Amount
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	rows, err := db.QueryContext(ctx, d.q(`SELECT amount, currency FROM refunds WHERE terminal = ? AND decision = 'approved' AND captured_at >= ? AND captured_at < ?`),
		terminal, from.UnixMilli(), to.UnixMilli())
	if err != nil {
		return t, fmt.Errorf("totals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var amount int64
		var currency string
		if err := rows.Scan(&amount, &currency); err != nil {
			return t, fmt.Errorf("totals: %w", err)
		}
		t.Refunds.Add(amount, currency)
		t.Captured[currency] -= amount
	}
	return t, rows.Err()
}
