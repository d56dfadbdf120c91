package offline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/posagent/posagent"
)

// PaymentRow is a payment of the POS app as the journal keeps it, beside its sale: the
// journal is the one ledger, so a payment and its sale record change in the same
// transaction (AppendWith, Commit) and never disagree on disk.
//
// State is authoritative: the journal keeps it in step with an offline sale's record
// after upload (uploading, then approved, declined or failed). Data is the rest of the
// payment as the agent shows it, opaque to the journal.
type PaymentRow struct {
	ID             string
	IdempotencyKey string
	SaleID         string // empty until the payment has a sale record
	State          string
	Done           bool // nothing more happens to it at the counter
	Data           []byte
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// ErrPaymentExists: a payment with that idempotency key is already in the journal.
var ErrPaymentExists = errors.New("a payment with that idempotency key exists")

func (j *Journal) putPayment(ctx context.Context, tx *sql.Tx, p *PaymentRow) error {
	now := j.now().UTC().Truncate(time.Millisecond)
	if p.CreatedAt.IsZero() {
		p.CreatedAt = now
	}
	p.UpdatedAt = now
	var sale any
	if p.SaleID != "" {
		sale = p.SaleID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO payments (id, idempotency_key, sale_id, state, done, data, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET sale_id = excluded.sale_id,
			-- an offline sale's later state comes from its record (setState): a write of the
			-- payment as the counter left it (stored) does not set it back
			state = CASE WHEN excluded.state IN ('stored', 'uploading') AND payments.state NOT IN ('stored', 'uploading', 'authorizing', 'checking', 'pending_customer', 'waiting')
				THEN payments.state ELSE excluded.state END,
			done = excluded.done,
			data = excluded.data, updated_at = excluded.updated_at`,
		p.ID, p.IdempotencyKey, sale, p.State, p.Done, string(p.Data), p.CreatedAt.UnixMilli(), now.UnixMilli())
	if err != nil {
		if isUniqueErr(err) {
			return fmt.Errorf("store payment: %w", ErrPaymentExists)
		}
		return classify("store payment", err)
	}
	return nil
}

func isUniqueErr(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey)
}

// CreatePayment stores a new payment; ErrPaymentExists when its idempotency key (or id)
// is taken.
func (j *Journal) CreatePayment(ctx context.Context, p *PaymentRow) error {
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return onReadOnlyFS(j.path, classify("store payment", err))
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM payments WHERE id = ? OR idempotency_key = ?`, p.ID, p.IdempotencyKey).Scan(&n); err != nil {
		return classify("store payment", err)
	}
	if n > 0 {
		return fmt.Errorf("store payment: %w", ErrPaymentExists)
	}
	if err := j.putPayment(ctx, tx, p); err != nil {
		return err
	}
	return onReadOnlyFS(j.path, classify("store payment", tx.Commit()))
}

// SavePayment writes a payment (insert or update) on its own, for changes that have no
// sale state change with them.
func (j *Journal) SavePayment(ctx context.Context, p *PaymentRow) error {
	return j.Commit(ctx, SaleChange{}, p)
}

// SaleChange is a change of a sale record that Commit makes together with its payment.
type SaleChange struct {
	SaleID string         // the record; empty: only the payment is written
	To     posagent.State // the record's new state; empty: no state change
	Note   string         // for the history (and the last error of declined and failed)
	// Reverse journals a reversal of the sale's online authorization, with this reason,
	// to be sent until the acquirer acknowledges it (PendingReversals, AckReversal).
	Reverse string
}

// Commit changes a sale record and writes its payment in one transaction: the sale's
// state (the legal moves of posagent.CheckTransition; moving to stored applies the
// offline policy and may return a *Refusal), a reversal to send, and the payment. pay
// may be nil. When Commit returns nil, all of it is on disk; otherwise none of it is.
func (j *Journal) Commit(ctx context.Context, c SaleChange, pay *PaymentRow) error {
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return onReadOnlyFS(j.path, classify("commit payment", err))
	}
	defer tx.Rollback()
	if c.SaleID != "" && (c.To != "" || c.Reverse != "") {
		r, err := scanRecord(tx.QueryRowContext(ctx, selectRecord+" WHERE id = ?", c.SaleID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("commit payment: sale %s: %w", c.SaleID, ErrNotFound)
		} else if err != nil {
			return classify("commit payment", err)
		}
		if c.To != "" && c.To != r.State {
			if err := posagent.CheckTransition(r.State, c.To); err != nil {
				return fmt.Errorf("sale %d: %w", r.Sequence, err)
			}
			if c.To == posagent.StateStored {
				if r.Kind != posagent.KindRefund {
					if err := j.checkOffline(ctx, tx, r.Method, r.Amount); err != nil {
						return err
					}
				}
				r.Offline = true
			}
			if err := j.setState(ctx, tx, &r.Record, c.To, c.Note); err != nil {
				return err
			}
		}
		if c.Reverse != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO reversals (sale_id, seq, reason, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (sale_id) DO NOTHING`, r.ID, r.Sequence, c.Reverse, j.now().UTC().UnixMilli()); err != nil {
				return classify("journal reversal", err)
			}
		}
	}
	if pay != nil {
		if err := j.putPayment(ctx, tx, pay); err != nil {
			return err
		}
	}
	return onReadOnlyFS(j.path, classify("commit payment", tx.Commit()))
}

const selectPayment = `SELECT id, idempotency_key, COALESCE(sale_id, ''), state, done, data, created_at, updated_at FROM payments`

func scanPayment(s scanner) (PaymentRow, error) {
	var p PaymentRow
	var data string
	var created, updated int64
	if err := s.Scan(&p.ID, &p.IdempotencyKey, &p.SaleID, &p.State, &p.Done, &data, &created, &updated); err != nil {
		return p, err
	}
	p.Data = []byte(data)
	p.CreatedAt, p.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return p, nil
}

func (j *Journal) payment(ctx context.Context, where string, arg any) (PaymentRow, error) {
	p, err := scanPayment(j.r.QueryRowContext(ctx, selectPayment+" WHERE "+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("payment %v: %w", arg, ErrNotFound)
	}
	return p, classify("read payment", err)
}

// Payment returns the payment with the given id (ErrNotFound when there is none).
func (j *Journal) Payment(ctx context.Context, id string) (PaymentRow, error) {
	return j.payment(ctx, "id = ?", id)
}

// PaymentByKey returns the payment created under the POS app's idempotency key.
func (j *Journal) PaymentByKey(ctx context.Context, key string) (PaymentRow, error) {
	return j.payment(ctx, "idempotency_key = ?", key)
}

// PaymentBySale returns the payment of a sale record.
func (j *Journal) PaymentBySale(ctx context.Context, saleID string) (PaymentRow, error) {
	return j.payment(ctx, "sale_id = ?", saleID)
}

// OpenPayments returns the payments not done at the counter, oldest first: what a
// restart resumes.
func (j *Journal) OpenPayments(ctx context.Context) ([]PaymentRow, error) {
	rows, err := j.r.QueryContext(ctx, selectPayment+" WHERE done = 0 ORDER BY created_at, id")
	if err != nil {
		return nil, classify("read payments", err)
	}
	defer rows.Close()
	var out []PaymentRow
	for rows.Next() {
		p, err := scanPayment(rows)
		if err != nil {
			return nil, classify("read payments", err)
		}
		out = append(out, p)
	}
	return out, classify("read payments", rows.Err())
}

// Reversal is a journaled reversal of an online authorization.
type Reversal struct {
	SaleID    string
	Sequence  uint64
	Reason    string
	CreatedAt time.Time
	Attempts  int
	LastError string
	AckedAt   time.Time // zero until the acquirer acknowledged it
	Answer    string    // what the acquirer said the authorization was (approved, not_found, …)
}

// PendingReversals returns the reversals the acquirer has not acknowledged, oldest first.
func (j *Journal) PendingReversals(ctx context.Context) ([]Reversal, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT sale_id, seq, reason, created_at, attempts, last_error FROM reversals
		WHERE acked_at IS NULL ORDER BY created_at, seq`)
	if err != nil {
		return nil, classify("read reversals", err)
	}
	defer rows.Close()
	var out []Reversal
	for rows.Next() {
		var r Reversal
		var at int64
		if err := rows.Scan(&r.SaleID, &r.Sequence, &r.Reason, &at, &r.Attempts, &r.LastError); err != nil {
			return nil, classify("read reversals", err)
		}
		r.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, r)
	}
	return out, classify("read reversals", rows.Err())
}

// GetReversal returns the reversal of a sale (ErrNotFound when none was journaled).
func (j *Journal) GetReversal(ctx context.Context, saleID string) (Reversal, error) {
	var r Reversal
	var at int64
	var acked sql.NullInt64
	err := j.r.QueryRowContext(ctx, `SELECT sale_id, seq, reason, created_at, attempts, last_error, acked_at, answer FROM reversals WHERE sale_id = ?`, saleID).
		Scan(&r.SaleID, &r.Sequence, &r.Reason, &at, &r.Attempts, &r.LastError, &acked, &r.Answer)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("reversal of %s: %w", saleID, ErrNotFound)
	} else if err != nil {
		return r, classify("read reversal", err)
	}
	r.CreatedAt = time.UnixMilli(at).UTC()
	if acked.Valid {
		r.AckedAt = time.UnixMilli(acked.Int64).UTC()
	}
	return r, nil
}

// AckReversal records the acquirer's acknowledgement of a reversal and what the
// authorization was before it (answer). Acknowledging twice is harmless.
func (j *Journal) AckReversal(ctx context.Context, saleID, answer string) error {
	_, err := j.w.ExecContext(ctx, `UPDATE reversals SET acked_at = ?, answer = ?, attempts = attempts + 1
		WHERE sale_id = ? AND acked_at IS NULL`, j.now().UTC().UnixMilli(), answer, saleID)
	return classify("acknowledge reversal", err)
}

// NoteReversalError counts a failed attempt to send a reversal and keeps its error.
func (j *Journal) NoteReversalError(ctx context.Context, saleID, msg string) error {
	_, err := j.w.ExecContext(ctx, `UPDATE reversals SET attempts = attempts + 1, last_error = ? WHERE sale_id = ?`, msg, saleID)
	return classify("note reversal error", err)
}

// ErrRebase: the journal was made fresh after its predecessor was found damaged, and must
// continue the chain the acquirer holds (Rebase) before it takes its first record.
var ErrRebase = errors.New("the journal must continue the acquirer's chain first")

// NeedsRebase reports why the journal must be rebased before its first record ("" when
// it need not be): it replaced a damaged journal whose records the acquirer may hold.
func (j *Journal) NeedsRebase() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.rebase
}

// Rebase makes an empty journal continue the chain the acquirer holds: its next record
// gets sequence seq+1 and chains onto hash (the acquirer's highest record; seq 0 and no
// hash when it holds none). It is recorded as the chain's anchor, so Verify starts there.
// A journal that already has records refuses (its sequence is taken).
func (j *Journal) Rebase(ctx context.Context, seq uint64, hash []byte) error {
	if seq > 0 && len(hash) != 32 {
		return fmt.Errorf("rebase journal: the acquirer's head hash must be 32 bytes, got %d", len(hash))
	}
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return classify("rebase journal", err)
	}
	defer tx.Rollback()
	var last uint64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counter WHERE name = 'sequence'`).Scan(&last); err != nil {
		return classify("rebase journal", err)
	}
	if last != 0 {
		return fmt.Errorf("rebase journal: it already holds records up to sequence %d", last)
	}
	if seq > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE counter SET value = ? WHERE name = 'sequence'`, seq); err != nil {
			return classify("rebase journal", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO anchor (id, seq, hash, purged_at) VALUES (1, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, purged_at = excluded.purged_at`,
			seq, hash, j.now().UTC().UnixMilli()); err != nil {
			return classify("rebase journal", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = 'rebase'`); err != nil {
		return classify("rebase journal", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('rebased', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		fmt.Sprintf("%s: continues the acquirer's chain after sequence %d", j.now().UTC().Format(time.RFC3339), seq)); err != nil {
		return classify("rebase journal", err)
	}
	if err := tx.Commit(); err != nil {
		return classify("rebase journal", err)
	}
	j.mu.Lock()
	j.rebase = ""
	j.mu.Unlock()
	return nil
}
