package acquirer

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/sync/wire"
)

// The parts of the SQLite and PostgreSQL stores that differ only in their SQL text: each
// store passes its own query (placeholders "?" or "$1"), the logic lives here once.

// querier is what both *sql.DB and *sql.Tx offer for a one-row query.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// provisioner is a store that can return a terminal's provisioned secret.
type provisioner interface {
	ProvisionedSecret(ctx context.Context, terminal string) ([]byte, error)
}

// signingSecret is Store.Secret for both stores: the signing key derived from the
// provisioned secret.
func signingSecret(ctx context.Context, p provisioner, terminal string) ([]byte, error) {
	secret, err := p.ProvisionedSecret(ctx, terminal)
	if err != nil {
		return nil, err
	}
	return signingKeyOf(terminal, secret)
}

// loadConfig reads a terminal's policy with query (one parameter: the terminal).
func loadConfig(ctx context.Context, q querier, query, terminal string) (wire.TerminalConfig, error) {
	var p string
	err := q.QueryRowContext(ctx, query, terminal).Scan(&p)
	if errors.Is(err, sql.ErrNoRows) {
		return wire.TerminalConfig{}, ErrNotFound
	}
	if err != nil {
		return wire.TerminalConfig{}, err
	}
	cfg := wire.TerminalConfig{Terminal: terminal}
	return cfg, json.Unmarshal([]byte(p), &cfg.Policy)
}

// scanResults reads rows of (cursor, body) into a results page that starts after the cursor.
func scanResults(rows *sql.Rows, after uint64) (wire.Results, error) {
	defer rows.Close()
	out := wire.Results{Results: []wire.Result{}, Next: after}
	for rows.Next() {
		var cur int64
		var body string
		if err := rows.Scan(&cur, &body); err != nil {
			return out, err
		}
		var r wire.Result
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return out, err
		}
		r.Cursor = uint64(cur)
		out.Results = append(out.Results, r)
		out.Next = r.Cursor
	}
	return out, rows.Err()
}

// setOrderTx changes a pending order's state inside tx: selectQuery reads its body (one
// parameter: the reference), updateQuery writes it back (body, reference). An order that
// is no longer pending (paid, closed, …) is not changed: ErrConflict.
func setOrderTx(ctx context.Context, tx *sql.Tx, selectQuery, updateQuery, reference, state, scheme string, at time.Time) error {
	var body string
	if err := tx.QueryRowContext(ctx, selectQuery, reference).Scan(&body); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		return err
	}
	var o wire.Order
	if err := json.Unmarshal([]byte(body), &o); err != nil {
		return err
	}
	if o.State != OrderPending {
		return fmt.Errorf("order %s is %s, no longer pending: %w", reference, o.State, ErrConflict)
	}
	o.State, o.Scheme = state, scheme
	if state == "paid" {
		o.PaidAt = at.UTC()
	}
	b, _ := json.Marshal(o)
	_, err := tx.ExecContext(ctx, updateQuery, string(b), reference)
	return err
}

// dialect is what differs between the stores' SQL text for the logic written once below:
// the queries are written with "?" placeholders, which PostgreSQL spells $1, $2, …, and
// JSON fields are read with each database's own function.
type dialect struct{ pg bool }

var (
	sqliteSQL   = dialect{pg: false}
	postgresSQL = dialect{pg: true}
)

// q returns query with the store's placeholders. The queries it rewrites hold no "?" but
// placeholders (no string literal or operator with one).
func (d dialect) q(query string) string {
	if !d.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// forUpdate locks the rows a SELECT reads until the transaction ends (PostgreSQL; SQLite
// has one writer, so the transaction already excludes every other).
func (d dialect) forUpdate() string {
	if d.pg {
		return " FOR UPDATE"
	}
	return ""
}

// jsonField is the SQL expression of a top-level text field of a JSON column. The
// results_record indexes are on exactly this expression of results.body.
func (d dialect) jsonField(col, field string) string {
	if d.pg {
		return "(" + col + "::jsonb ->> '" + field + "')"
	}
	return "json_extract(" + col + ", '$." + field + "')"
}

// plain is col as a comparison operand that leaves the other side as it is: SQLite would
// otherwise give a JSON expression compared with a TEXT column that column's affinity, and
// then not use the index on the expression (results_record); "+col" has no affinity.
func (d dialect) plain(col string) string {
	if d.pg {
		return col
	}
	return "+" + col
}

// execer is what *sql.Tx offers for the shared logic.
type execer interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// authRow is one row of the authorizations table: an online authorization of a sale, or a
// tombstone (content empty) left by a reversal that arrived before it.
type authRow struct {
	key, content, saleID string
	sequence             int64
	amount               int64
	currency, method     string
	state                string // approved, declined, pending_customer, reversed
	response             string // JSON wire.AuthorizationResponse: the answer to the POST now
	pendingUntil         int64  // pending_customer: Unix ms when it resolves to final
	final, finalState    string // pending_customer: the answer and state it resolves to; "" never
	reversal             string // JSON wire.ReversalResponse once reversed
}

const authCols = `idempotency_key, content, sale_id, sequence, amount, currency, method, state, response, pending_until, final, final_state, reversal`

// loadAuth reads the authorization of terminal whose column col (idempotency_key or
// sale_id) is v, locked for the transaction; nil when there is none.
func loadAuth(ctx context.Context, tx execer, d dialect, terminal, col, v string) (*authRow, error) {
	var a authRow
	err := tx.QueryRowContext(ctx, d.q(`SELECT `+authCols+` FROM authorizations WHERE terminal = ? AND `+col+` = ? ORDER BY content = '' LIMIT 1`+d.forUpdate()),
		terminal, v).Scan(&a.key, &a.content, &a.saleID, &a.sequence, &a.amount, &a.currency, &a.method, &a.state, &a.response,
		&a.pendingUntil, &a.final, &a.finalState, &a.reversal)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read authorization: %w", err)
	}
	return &a, nil
}

// resolveDue persists the outcome of terminal's pending authorizations whose col is v and
// whose customer-confirmation time has passed at now: they become what they resolve to.
// Pending outcomes are computed lazily, at the first read after their time.
func resolveDue(ctx context.Context, tx execer, d dialect, terminal, col, v string, now time.Time) error {
	_, err := tx.ExecContext(ctx, d.q(`UPDATE authorizations SET state = final_state, response = final
		WHERE terminal = ? AND `+col+` = ? AND state = 'pending_customer' AND final_state <> '' AND pending_until <= ?`),
		terminal, v, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("resolve a pending authorization: %w", err)
	}
	return nil
}

// Outcome is the decision for a new online authorization: Response is the answer now. A
// pending one (Response.Decision wire.PendingCustomer) becomes Final at PendingUntil; with
// Final nil it stays pending until the terminal reverses it.
type Outcome struct {
	Response     wire.AuthorizationResponse
	PendingUntil time.Time
	Final        *wire.AuthorizationResponse
}

// Reasons the acquirer gives for the reversed states.
const (
	ReasonTombstone = "reversed before the authorization arrived"
	ReasonReversed  = "reversed"
)

// authorizeTx is Store.Authorize for both stores, inside tx (on PostgreSQL under the
// terminal's lock).
func authorizeTx(ctx context.Context, tx execer, d dialect, terminal string, req wire.AuthorizationRequest, decide func() Outcome, now time.Time) (wire.AuthorizationResponse, error) {
	var resp wire.AuthorizationResponse
	content := contentHash(req)
	if err := resolveDue(ctx, tx, d, terminal, "idempotency_key", req.IdempotencyKey, now); err != nil {
		return resp, err
	}
	a, err := loadAuth(ctx, tx, d, terminal, "idempotency_key", req.IdempotencyKey)
	if err != nil {
		return resp, err
	}
	if a == nil {
		// The same sale under another key: refused if it was reversed, else a conflict.
		if a, err = loadAuth(ctx, tx, d, terminal, "sale_id", req.ID); err != nil {
			return resp, err
		}
		if a != nil {
			if a.state != string(wire.Reversed) {
				return resp, fmt.Errorf("sale %s is already authorized under another idempotency key: %w", req.ID, ErrConflict)
			}
			err := json.Unmarshal([]byte(a.response), &resp)
			return resp, err
		}
	}
	switch {
	case a != nil && a.content == "":
		// A tombstone: the reversal came first. The authorization is refused, for ever,
		// and from now on the key is bound to this request's content.
		if a.saleID != req.ID {
			return resp, fmt.Errorf("idempotency key %q was reversed for sale %s: %w", req.IdempotencyKey, a.saleID, ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, d.q(`UPDATE authorizations SET content = ?, method = ?, reference = ?, captured_at = ?, scheme = ? WHERE terminal = ? AND idempotency_key = ?`),
			content, req.Method, req.Reference, req.CapturedAt.UnixMilli(), req.Scheme, terminal, req.IdempotencyKey); err != nil {
			return resp, err
		}
		err := json.Unmarshal([]byte(a.response), &resp)
		return resp, err
	case a != nil && a.content != content:
		return resp, fmt.Errorf("idempotency key %q: %w", req.IdempotencyKey, ErrConflict)
	case a != nil:
		err := json.Unmarshal([]byte(a.response), &resp)
		return resp, err
	}
	out := decide()
	resp = out.Response
	body, _ := json.Marshal(resp)
	var until int64
	var final, finalState string
	if resp.Decision == wire.PendingCustomer && out.Final != nil {
		until = out.PendingUntil.UnixMilli()
		f := *out.Final
		f.ID = req.ID
		b, _ := json.Marshal(f)
		final, finalState = string(b), string(f.Decision)
	}
	_, err = tx.ExecContext(ctx, d.q(`INSERT INTO authorizations (terminal, idempotency_key, content, response, sale_id, sequence, amount,
		currency, method, reference, state, created_at, pending_until, final, final_state, reversal, captured_at, scheme)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)`),
		terminal, req.IdempotencyKey, content, string(body), req.ID, int64(req.Sequence), req.Amount, req.Currency, req.Method, req.Reference,
		string(resp.Decision), d.timestamp(now), until, final, finalState, req.CapturedAt.UnixMilli(), req.Scheme)
	return resp, err
}

// timestamp is how a store keeps a time that only people read (created_at).
func (d dialect) timestamp(t time.Time) any {
	if d.pg {
		return t.UTC()
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// statusTx is Store.AuthorizationStatus for both stores.
func statusTx(ctx context.Context, tx execer, d dialect, terminal, id string, now time.Time) (wire.AuthorizationStatus, error) {
	st := wire.AuthorizationStatus{ID: id, State: wire.StatusNotFound}
	if err := resolveDue(ctx, tx, d, terminal, "sale_id", id, now); err != nil {
		return st, err
	}
	a, err := loadAuth(ctx, tx, d, terminal, "sale_id", id)
	if err != nil || a == nil {
		return st, err
	}
	var resp wire.AuthorizationResponse
	if err := json.Unmarshal([]byte(a.response), &resp); err != nil {
		return st, err
	}
	st.State, st.Reason, st.AuthCode, st.DecidedAt = string(resp.Decision), resp.Reason, resp.AuthCode, resp.DecidedAt
	st.Amount, st.Currency = a.amount, a.currency
	return st, nil
}

// reverseTx is Store.Reverse for both stores, inside tx (on PostgreSQL under the
// terminal's lock).
func reverseTx(ctx context.Context, tx execer, d dialect, terminal string, req wire.ReversalRequest, now time.Time) (wire.ReversalResponse, error) {
	var rev wire.ReversalResponse
	if err := resolveDue(ctx, tx, d, terminal, "sale_id", req.ID, now); err != nil {
		return rev, err
	}
	a, err := loadAuth(ctx, tx, d, terminal, "sale_id", req.ID)
	if err != nil {
		return rev, err
	}
	if a == nil {
		other, err := loadAuth(ctx, tx, d, terminal, "idempotency_key", req.IdempotencyKey)
		if err != nil {
			return rev, err
		}
		if other != nil && other.saleID != req.ID {
			return rev, fmt.Errorf("idempotency key %q belongs to sale %s, not %s: %w", req.IdempotencyKey, other.saleID, req.ID, ErrConflict)
		}
		a = other
	}
	if a == nil {
		// Nothing arrived yet: a tombstone refuses the authorization when it does.
		rev = wire.ReversalResponse{ID: req.ID, State: string(wire.Reversed), Previous: wire.StatusNotFound, ReversedAt: now.UTC()}
		resp := wire.AuthorizationResponse{ID: req.ID, Decision: wire.Reversed, Reason: ReasonTombstone, DecidedAt: now.UTC()}
		rb, _ := json.Marshal(rev)
		ab, _ := json.Marshal(resp)
		_, err = tx.ExecContext(ctx, d.q(`INSERT INTO authorizations (terminal, idempotency_key, content, response, sale_id, sequence, amount,
			currency, method, reference, state, created_at, pending_until, final, final_state, reversal) VALUES (?, ?, '', ?, ?, ?, ?, ?, '', '', ?, ?, 0, '', '', ?)`),
			terminal, req.IdempotencyKey, string(ab), req.ID, int64(req.Sequence), req.Amount, req.Currency, string(wire.Reversed), d.timestamp(now), string(rb))
		return rev, err
	}
	if a.reversal != "" {
		err := json.Unmarshal([]byte(a.reversal), &rev)
		return rev, err
	}
	if a.currency != "" && (a.amount != req.Amount || a.currency != req.Currency) {
		return rev, fmt.Errorf("sale %s was authorized for %d %s, the reversal is for %d %s: %w", req.ID, a.amount, a.currency, req.Amount, req.Currency, ErrConflict)
	}
	return markReversed(ctx, tx, d, terminal, a, req.Reason, now)
}

// markReversed reverses the authorization a: what was captured is given back, a pending
// one is closed, and any later POST of it is answered reversed.
func markReversed(ctx context.Context, tx execer, d dialect, terminal string, a *authRow, reason string, now time.Time) (wire.ReversalResponse, error) {
	rev := wire.ReversalResponse{ID: a.saleID, State: string(wire.Reversed), Previous: a.state, ReversedAt: now.UTC()}
	resp := wire.AuthorizationResponse{ID: a.saleID, Decision: wire.Reversed, Reason: ReasonReversed, DecidedAt: now.UTC()}
	if reason != "" {
		resp.Reason += ": " + reason
	}
	rb, _ := json.Marshal(rev)
	ab, _ := json.Marshal(resp)
	_, err := tx.ExecContext(ctx, d.q(`UPDATE authorizations SET state = ?, response = ?, reversal = ? WHERE terminal = ? AND idempotency_key = ?`),
		string(wire.Reversed), string(ab), string(rb), terminal, a.key)
	return rev, err
}

// onlineOutcome is what an offline record's deferred result must be when the sale was
// also sent for online authorization (same idempotency key): the online decision stands,
// never a second one. A reversed authorization declines the record ("reversed"); one
// still pending at the wallet is reversed now and the record declined the same way, so
// the money cannot move later. ok is false when no authorization has that key.
func onlineOutcome(ctx context.Context, tx execer, d dialect, terminal, key string, now time.Time) (r wire.AuthorizationResponse, ok bool, err error) {
	if err := resolveDue(ctx, tx, d, terminal, "idempotency_key", key, now); err != nil {
		return r, false, err
	}
	a, err := loadAuth(ctx, tx, d, terminal, "idempotency_key", key)
	if err != nil || a == nil {
		return r, false, err
	}
	if err := json.Unmarshal([]byte(a.response), &r); err != nil {
		return r, false, err
	}
	switch wire.Decision(a.state) {
	case wire.PendingCustomer:
		rev, err := markReversed(ctx, tx, d, terminal, a, "still pending at the wallet when the offline record arrived", now)
		if err != nil {
			return r, false, err
		}
		return wire.AuthorizationResponse{ID: a.saleID, Decision: wire.Declined, Reason: ReasonReversed, DecidedAt: rev.ReversedAt}, true, nil
	case wire.Reversed:
		return wire.AuthorizationResponse{ID: a.saleID, Decision: wire.Declined, Reason: ReasonReversed, DecidedAt: r.DecidedAt}, true, nil
	}
	return r, true, nil
}

// ledgerQuery lists every sale the acquirer knows, ordered by terminal and sequence: the
// online authorizations (their state resolved at the query's time, without writing) and
// the uploaded records that have none, each with its result in the feed and, for a
// merchant-presented sale, its order. Parameters: now (Unix ms), then the terminal twice
// per part ("" for all).
//
// Refund records are not sales: ledgerRows leaves them out, and each sale carries the sum
// of its approved refunds (refunds table).
func ledgerQuery(d dialect) string {
	// The sum of a sale's approved refunds: a point look-up on refunds_sale per sale.
	refunded := func(terminal, sale string) string {
		return `(SELECT CAST(COALESCE(SUM(f.amount), 0) AS BIGINT) FROM refunds f WHERE f.terminal = ` + terminal + ` AND f.sale_id = ` + sale + `
			AND f.decision = 'approved')`
	}
	return d.q(`SELECT 'a', a.terminal, a.sequence, a.sale_id, a.idempotency_key, a.amount, a.currency,
		CASE WHEN a.state = 'pending_customer' AND a.final_state <> '' AND a.pending_until <= ? THEN a.final_state ELSE a.state END,
		'', '', '', ` + refunded("a.terminal", "a.sale_id") + `, a.captured_at, a.method, a.scheme
	FROM authorizations a
	WHERE (? = '' OR a.terminal = ?)
	UNION ALL
	SELECT 'r', r.terminal, r.sequence, r.id, r.idempotency_key, 0, '', '', r.body, COALESCE(res.body, ''), COALESCE(o.body, ''),
		` + refunded("r.terminal", "r.id") + `, 0, '', ''
	FROM records r
	LEFT JOIN results res ON res.terminal = r.terminal AND ` + d.jsonField("res.body", "id") + ` = ` + d.plain("r.id") + `
	LEFT JOIN orders o ON o.reference = ` + d.jsonField("r.body", "reference") + ` AND o.terminal = r.terminal
	WHERE (? = '' OR r.terminal = ?)
		AND NOT EXISTS (SELECT 1 FROM authorizations a WHERE a.terminal = r.terminal AND a.idempotency_key = r.idempotency_key)
	ORDER BY 2, 3`)
}

// saleRow is a ledger entry with what the totals group by: the sale's capture time,
// method and scheme.
type saleRow struct {
	wire.LedgerEntry
	capturedAt     time.Time
	method, scheme string
	refund         bool // a refund record: not a sale
}

// ledger is Store.Ledger for both stores: it streams the rows of ledgerQuery to fn.
func ledger(ctx context.Context, db *sql.DB, d dialect, now time.Time, terminal string, fn func(wire.LedgerEntry) error) error {
	return ledgerRows(ctx, db, d, now, terminal, func(r saleRow) error { return fn(r.LedgerEntry) })
}

// ledgerRows streams the rows of ledgerQuery to fn. refunded is the sum of a sale's
// approved refunds; an order the acquirer refunded on its close (state refunded) is
// refunded in full; captured is the amount less refunded when approved, else 0.
func ledgerRows(ctx context.Context, db *sql.DB, d dialect, now time.Time, terminal string, fn func(saleRow) error) error {
	rows, err := db.QueryContext(ctx, ledgerQuery(d), now.UnixMilli(), terminal, terminal, terminal, terminal)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var kind, state, body, result, order string
		var seq, capturedAt int64
		var r saleRow
		e := &r.LedgerEntry
		if err := rows.Scan(&kind, &e.Terminal, &seq, &e.SaleID, &e.IdempotencyKey, &e.Amount, &e.Currency, &state, &body, &result, &order,
			&e.Refunded, &capturedAt, &r.method, &r.scheme); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		e.Sequence = uint64(seq)
		if kind == "a" {
			e.State, e.Source = state, "online"
			if capturedAt != 0 {
				r.capturedAt = time.UnixMilli(capturedAt).UTC()
			}
		} else if err := recordEntry(&r, body, result, order); err != nil {
			return fmt.Errorf("ledger: record %s of %s: %w", e.SaleID, e.Terminal, err)
		}
		if r.refund {
			continue
		}
		switch e.State {
		case string(wire.Approved):
			e.Captured = e.Amount - e.Refunded
		case OrderRefunded:
			e.Refunded = e.Amount
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// recordEntry fills a ledger entry from an uploaded record that has no online
// authorization: a merchant-presented sale takes its order's state (paid: approved); an
// offline one its deferred result; any other keeps the terminal's final state, canceled
// as "voided", and one the terminal holds approved that the acquirer never authorized is
// "unauthorized" (nothing captured: the discrepancy operators must see).
func recordEntry(row *saleRow, body, result, order string) error {
	e := &row.LedgerEntry
	var rec wire.Record
	if err := json.Unmarshal([]byte(body), &rec); err != nil {
		return err
	}
	e.Amount, e.Currency, e.Source = rec.Amount, rec.Currency, "offline"
	row.capturedAt, row.method, row.scheme, row.refund = rec.CapturedAt.UTC(), rec.Method, rec.Scheme, isRefund(rec)
	switch {
	case rec.Method == string(posagent.MethodMerchantQR) && order != "":
		var o wire.Order
		if err := json.Unmarshal([]byte(order), &o); err != nil {
			return err
		}
		e.Source, e.State = "online", o.State
		if row.scheme == "" {
			row.scheme = o.Scheme
		}
		if o.State == "paid" {
			e.State = string(wire.Approved)
		}
	case result != "":
		var r wire.Result
		if err := json.Unmarshal([]byte(result), &r); err != nil {
			return err
		}
		e.State = string(r.Decision)
	case rec.State == "canceled":
		e.State = "voided"
	case rec.State == string(wire.Approved):
		e.State = "unauthorized"
	default:
		e.State = rec.State
	}
	if rec.Method == string(posagent.MethodMerchantQR) {
		e.Source = "online"
	}
	return nil
}

// chainHead is Store.ChainHead for both stores: query reads (sequence, hash) of the
// terminal's highest record (one parameter: the terminal).
func chainHead(ctx context.Context, q querier, query, terminal string) (wire.ChainHead, error) {
	h := wire.ChainHead{Terminal: terminal}
	var seq int64
	err := q.QueryRowContext(ctx, query, terminal).Scan(&seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return h, nil
	}
	h.Sequence = uint64(seq)
	return h, err
}
