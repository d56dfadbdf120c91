package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/sqlstmt"
)

// Record is a sale as the journal holds it, with its place in the hash chain.
type Record struct {
	posagent.Sale
	PrevHash, Hash, MAC []byte
	// Overdue: the sale has waited offline longer than the policy's MaxAge. It stays in
	// the journal and is still sent; the flag is for the technician and the status page.
	Overdue bool
	// History is every state change, oldest first; Get and friends fill it, List doesn't.
	History []Change
}

// Change is one state change of a record.
type Change struct {
	At       time.Time
	From, To posagent.State // From is empty for the record's creation
	Note     string
}

// NewSale is a sale to journal.
type NewSale struct {
	// IdempotencyKey is the POS app's key for the request: the same key again returns
	// the original record (a retry is a look-up, never a second sale).
	IdempotencyKey string
	Reference      string
	Amount         posagent.Amount
	Method         posagent.Method
	Scheme         posagent.Scheme
	// Credential is the payment credential (a wallet code, an EMV consumer-presented
	// payload); encrypted at rest, shown only masked. Empty for a merchant QR sale.
	Credential string
	// Offline: accept the sale offline now (state stored), under the policy. Otherwise the
	// sale starts in state authorizing.
	Offline bool
	// CapturedAt defaults to the journal's clock.
	CapturedAt time.Time
	// Kind is KindSale (the default) or KindRefund; a refund names the refunded sale in
	// Parent. Append refuses a refund of a sale that is not approved, in another currency,
	// or beyond what is left of it (the sale's amount less its refunds not declined or
	// failed), in the transaction that stores it, so two refunds cannot both slip through.
	Kind   posagent.Kind
	Parent string
}

const maxCredential = 2048

func (s *NewSale) validate() error {
	if err := checkText("idempotency key", s.IdempotencyKey, 1, 128); err != nil {
		return err
	}
	if err := checkText("reference", s.Reference, 0, 128); err != nil {
		return err
	}
	if s.Amount.Minor <= 0 {
		return posagent.Invalidf("amount must be positive, got %d", s.Amount.Minor)
	}
	if c, err := posagent.LookupCurrency(s.Amount.Currency.Code); err != nil || c != s.Amount.Currency {
		return posagent.Invalidf("currency %q is not a known ISO 4217 currency", s.Amount.Currency.Code)
	}
	switch s.Kind {
	case "", posagent.KindSale:
		if s.Parent != "" {
			return posagent.Invalidf("a sale has no parent; only a refund names the sale it refunds")
		}
	case posagent.KindRefund:
		if s.Parent == "" {
			return posagent.Invalidf("a refund must name the sale it refunds")
		}
		if s.Offline {
			return posagent.Invalidf("a refund is not accepted offline: it is journaled, then sent or stored")
		}
	default:
		return posagent.Invalidf("kind %q is not sale or refund", s.Kind)
	}
	if !validMethod(s.Method) {
		return posagent.Invalidf("method %q is not one of wallet-code, emv-cpm, merchant-qr", s.Method)
	}
	if err := checkText("scheme", string(s.Scheme), 0, 64); err != nil {
		return err
	}
	if len(s.Credential) > maxCredential || !utf8.ValidString(s.Credential) {
		return posagent.Invalidf("credential is longer than %d bytes or not text", maxCredential)
	}
	return nil
}

func validMethod(m posagent.Method) bool {
	for _, k := range knownMethods {
		if m == k {
			return true
		}
	}
	return false
}

func checkText(name, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen {
		if minLen > 0 && s == "" {
			return posagent.Invalidf("%s is missing", name)
		}
		return posagent.Invalidf("%s must be at most %d bytes", name, maxLen)
	}
	if !utf8.ValidString(s) {
		return posagent.Invalidf("%s is not UTF-8", name)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return posagent.Invalidf("%s holds a control character", name)
		}
	}
	return nil
}

// ConflictError is an idempotency key used again for a different sale.
type ConflictError struct {
	Key      string
	Existing Record
}

func (e *ConflictError) Error() string {
	a := e.Existing.Amount
	return fmt.Sprintf("idempotency key %q was already used for another sale (%s %s, %s, sequence %d)",
		e.Key, FormatAmount(a.Minor, a.Currency), a.Currency.Code, e.Existing.State, e.Existing.Sequence)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Append journals a new sale, before anything else happens to it. It returns the record
// and created=true, or, when the idempotency key is already in the journal for the same
// sale, the original record and created=false. The same key for a different sale (amount,
// currency, method, scheme, reference or credential differ) is a *ConflictError.
//
// An offline sale is checked against the policy in the same transaction that stores it, so
// two sales cannot both slip under a limit; a refusal is a *Refusal (ErrPolicy), and a
// held journal refuses with ErrHeld. A full or read-only disk gives ErrDiskFull or
// ErrReadOnly and leaves what is stored untouched.
//
// When Append returns without error the record is on disk (WAL, synchronous=FULL).
func (j *Journal) Append(ctx context.Context, s NewSale) (Record, bool, error) {
	return j.AppendWith(ctx, s, nil)
}

// AppendWith is Append that also writes the POS app's payment in the same transaction
// (one ledger: the sale and its payment never disagree on disk). pay.SaleID is set to the
// record's id. A nil pay is Append.
func (j *Journal) AppendWith(ctx context.Context, s NewSale, pay *PaymentRow) (Record, bool, error) {
	if err := s.validate(); err != nil {
		return Record{}, false, err
	}
	key := j.opts.Key
	if key == nil {
		return Record{}, false, fmt.Errorf("append: %w: the journal was opened without the key file", ErrNoKey)
	}
	if why := j.NeedsRebase(); why != "" {
		return Record{}, false, fmt.Errorf("append: %w (%s)", ErrRebase, why)
	}
	id, err := newID()
	if err != nil {
		return Record{}, false, err
	}
	now := j.now().UTC().Truncate(time.Millisecond)
	captured := s.CapturedAt.UTC().Truncate(time.Millisecond)
	if s.CapturedAt.IsZero() {
		captured = now
	}
	var sealed, tag []byte
	if s.Credential != "" {
		cred := []byte(s.Credential)
		tag = key.CredentialTag(cred)
		if sealed, err = key.seal(id, cred); err != nil {
			return Record{}, false, err
		}
		clear(cred)
	}
	state := posagent.StateAuthorizing
	if s.Offline {
		state = posagent.StateStored
	}

	tx, err := j.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return Record{}, false, onReadOnlyFS(j.path, classify("store sale", err))
	}
	defer tx.Rollback()

	if prev, err := scanRecord(tx.QueryRowContext(ctx, selectRecord+" WHERE idempotency_key = ?", s.IdempotencyKey)); err == nil {
		same := prev.Amount == s.Amount && prev.Method == s.Method && prev.Scheme == s.Scheme &&
			prev.Reference == s.Reference && bytes.Equal(prev.credTag, tag) && prev.Kind == kindOf(s.Kind) && prev.Parent == s.Parent
		if !same {
			return Record{}, false, &ConflictError{Key: s.IdempotencyKey, Existing: prev.Record}
		}
		if pay != nil {
			pay.SaleID = prev.ID
			if err := j.putPayment(ctx, tx, pay); err != nil {
				return Record{}, false, err
			}
			if err := tx.Commit(); err != nil {
				return Record{}, false, onReadOnlyFS(j.path, classify("store sale", err))
			}
		}
		j.flag(&prev.Record)
		return prev.Record, false, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return Record{}, false, classify("store sale", err)
	}

	if s.Offline {
		if err := j.checkOffline(ctx, tx, s.Method, s.Amount); err != nil {
			return Record{}, false, err
		}
	}
	if s.Kind == posagent.KindRefund {
		if err := checkRefund(ctx, tx, s.Parent, s.Amount); err != nil {
			return Record{}, false, err
		}
	}

	var seq uint64
	if err := tx.QueryRowContext(ctx, `UPDATE counter SET value = value + 1 WHERE name = 'sequence' RETURNING value`).Scan(&seq); err != nil {
		return Record{}, false, classify("store sale", err)
	}
	prevHash, err := headHash(ctx, tx, seq)
	if err != nil {
		return Record{}, false, err
	}
	e := Entry{
		Sequence: seq, CapturedAt: captured, Amount: s.Amount.Minor, ID: id, Terminal: j.terminal,
		IdempotencyKey: s.IdempotencyKey, Reference: s.Reference, Currency: s.Amount.Currency.Code,
		Method: s.Method, Scheme: s.Scheme, CredentialTag: tag, Kind: s.Kind, Parent: s.Parent,
	}
	canon, err := e.MarshalBinary()
	if err != nil {
		return Record{}, false, posagent.Invalidf("store sale: %v", err)
	}
	hash := ChainHash(canon, prevHash)
	mac := key.RecordMAC(hash)
	masked := MaskCredential(s.Credential)
	_, err = tx.ExecContext(ctx, `INSERT INTO sales (seq, id, terminal, idempotency_key, reference, captured_at, amount, currency,
		method, scheme, credential, credential_tag, credential_masked, offline, state, updated_at, prev_hash, hash, mac, kind, parent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, id, j.terminal, s.IdempotencyKey, s.Reference, captured.UnixMilli(), s.Amount.Minor, s.Amount.Currency.Code,
		string(s.Method), string(s.Scheme), sealed, tag, masked, s.Offline, string(state), now.UnixMilli(), prevHash, hash, mac,
		string(kindOf(s.Kind)), s.Parent)
	if err != nil {
		return Record{}, false, classify("store sale", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO history (seq, at, from_state, to_state, note) VALUES (?, ?, '', ?, ?)`,
		seq, now.UnixMilli(), string(state), "journaled"); err != nil {
		return Record{}, false, classify("store sale", err)
	}
	if pay != nil {
		pay.SaleID = id
		if err := j.putPayment(ctx, tx, pay); err != nil {
			return Record{}, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return Record{}, false, onReadOnlyFS(j.path, classify("store sale", err))
	}
	rec := Record{
		Sale: posagent.Sale{
			ID: id, Kind: kindOf(s.Kind), Parent: s.Parent, Sequence: seq, Terminal: j.terminal, IdempotencyKey: s.IdempotencyKey, Reference: s.Reference,
			CapturedAt: captured, Amount: s.Amount, Method: s.Method, Scheme: s.Scheme, CredentialMasked: masked,
			Offline: s.Offline, State: state, UpdatedAt: now,
		},
		PrevHash: prevHash, Hash: hash, MAC: mac,
		History: []Change{{At: now, To: state, Note: "journaled"}},
	}
	return rec, true, nil
}

// headHash is the hash the record with sequence seq chains onto: the previous record's,
// the purge anchor's, or the genesis hash for the first record.
func headHash(ctx context.Context, tx *sql.Tx, seq uint64) ([]byte, error) {
	if seq == 1 {
		return GenesisHash, nil
	}
	var h []byte
	err := tx.QueryRowContext(ctx, `SELECT hash FROM sales WHERE seq = ?`, seq-1).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRowContext(ctx, `SELECT hash FROM anchor WHERE seq = ?`, seq-1).Scan(&h)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, &StoreError{Kind: ErrCorrupt, Op: "store sale", Err: fmt.Errorf("record %d, the head of the chain, is missing", seq-1)}
	}
	if err != nil {
		return nil, classify("store sale", err)
	}
	return h, nil
}

// checkOffline applies the hold and the policy inside the writing transaction.
func (j *Journal) checkOffline(ctx context.Context, tx *sql.Tx, m posagent.Method, a posagent.Amount) error {
	// The hold is read in the transaction, so a technician's `posagent queue release`
	// takes effect in a running agent.
	var hold string
	err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'hold'`).Scan(&hold)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return classify("check offline policy", err)
	}
	j.mu.Lock()
	j.hold = hold
	j.mu.Unlock()
	if hold != "" {
		return fmt.Errorf("%w: %s; call a technician", ErrHeld, hold)
	}
	out, err := outstanding(ctx, tx)
	if err != nil {
		return classify("check offline policy", err)
	}
	return j.opts.Policy.Check(m, a, out, j.now())
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func outstanding(ctx context.Context, q querier) (Outstanding, error) {
	out := Outstanding{Amounts: map[string]int64{}}
	rows, err := q.QueryContext(ctx, `SELECT currency, SUM(amount), COUNT(*), MIN(captured_at) FROM sales
		WHERE state IN ('stored', 'uploading') AND kind = 'sale' GROUP BY currency`)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var cur string
		var sum, oldest int64
		var n int
		if err := rows.Scan(&cur, &sum, &n, &oldest); err != nil {
			return out, err
		}
		out.Amounts[cur] = sum
		out.Count += n
		if t := time.UnixMilli(oldest).UTC(); out.Oldest.IsZero() || t.Before(out.Oldest) {
			out.Oldest = t
		}
	}
	return out, rows.Err()
}

// Transition moves a record to another state, with a note for its history (for declined
// and failed, the reason, also kept as the record's last error). The legal moves are
// posagent.CheckTransition's; an illegal one is an error wrapping posagent.ErrTransition.
// Moving an online sale to stored (the acquirer did not answer) applies the offline policy.
func (j *Journal) Transition(ctx context.Context, id string, to posagent.State, note string) (Record, error) {
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return Record{}, classify("change state", err)
	}
	defer tx.Rollback()
	r, err := scanRecord(tx.QueryRowContext(ctx, selectRecord+" WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("change state of %s: %w", id, ErrNotFound)
	} else if err != nil {
		return Record{}, classify("change state", err)
	}
	if err := posagent.CheckTransition(r.State, to); err != nil {
		return Record{}, fmt.Errorf("sale %d: %w", r.Sequence, err)
	}
	if to == posagent.StateStored {
		// A refund is forwarded later whatever the policy: it gives money back.
		if r.Kind != posagent.KindRefund {
			if err := j.checkOffline(ctx, tx, r.Method, r.Amount); err != nil {
				return Record{}, err
			}
		}
		r.Offline = true
	}
	if err := j.setState(ctx, tx, &r.Record, to, note); err != nil {
		return Record{}, err
	}
	if err := tx.Commit(); err != nil {
		return Record{}, classify("change state", err)
	}
	j.flag(&r.Record)
	return r.Record, nil
}

func (j *Journal) setState(ctx context.Context, tx txExecer, r *Record, to posagent.State, note string) error {
	now := j.now().UTC().Truncate(time.Millisecond)
	lastErr := r.LastError
	if to == posagent.StateDeclined || to == posagent.StateFailed {
		lastErr = note
	}
	if _, err := tx.ExecContext(ctx, `UPDATE sales SET state = ?, offline = ?, last_error = ?, updated_at = ? WHERE seq = ?`,
		string(to), r.Offline, lastErr, now.UnixMilli(), r.Sequence); err != nil {
		return classify("change state", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO history (seq, at, from_state, to_state, note) VALUES (?, ?, ?, ?, ?)`,
		r.Sequence, now.UnixMilli(), string(r.State), string(to), note); err != nil {
		return classify("change state", err)
	}
	r.History = append(r.History, Change{At: now, From: r.State, To: to, Note: note})
	r.State, r.LastError, r.UpdatedAt = to, lastErr, now
	// An offline sale's payment follows its record after upload (uploading, then the
	// acquirer's approved or declined, or failed when rejected): in this transaction.
	if r.Offline && (to == posagent.StateUploading || to.Final()) {
		if _, err := tx.ExecContext(ctx, `UPDATE payments SET state = ?, done = 1, updated_at = ?
			WHERE sale_id = ? AND state IN ('stored', 'uploading')`, string(to), now.UnixMilli(), r.ID); err != nil {
			return classify("change state", err)
		}
	}
	return nil
}

// Pending returns up to limit records the acquirer does not hold yet, in sequence order:
// what the uplink sends next. Records still authorizing online are left out (they are
// sent once they have an outcome); everything else is, final or not, because the acquirer
// needs every sequence number to see that the chain has no gaps.
func (j *Journal) Pending(ctx context.Context, limit int) ([]Record, error) {
	if limit <= 0 {
		limit = 100
	}
	return j.query(ctx, selectRecord+` WHERE acked_at IS NULL AND state != 'authorizing' ORDER BY seq LIMIT ?`, limit)
}

// MarkUploading notes that the records are being sent in a batch: each gets one more
// attempt, and stored records move to uploading. Records in other states keep theirs.
func (j *Journal) MarkUploading(ctx context.Context, ids ...string) error {
	return j.AckAndMark(ctx, nil, ids)
}

// Ack records that the acquirer holds the records (its answer was accepted or duplicate).
// Acknowledging twice is harmless. Acknowledged records in a final state are purged after
// the retention period.
func (j *Journal) Ack(ctx context.Context, ids ...string) error {
	return j.AckAndMark(ctx, ids, nil)
}

// AckAndMark is Ack(acked) and MarkUploading(next) in one transaction: the uplink's one
// durable commit per batch, which acknowledges the batch answered before and starts the
// next. A crash before it commits leaves the answered records unacknowledged: they are sent
// again and answered duplicate, never stored twice.
func (j *Journal) AckAndMark(ctx context.Context, acked, next []string) error {
	if len(acked)+len(next) == 0 {
		return nil
	}
	op := "acknowledge"
	if len(next) > 0 {
		op = "mark uploading"
	}
	now := j.now().UTC().Truncate(time.Millisecond).UnixMilli()
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(op, err)
	}
	defer tx.Rollback()
	// Set-based, a chunk of ids per statement: the cost of a batch is a handful of
	// statements, not a handful per record.
	for ids := range slices.Chunk(acked, maxIDsPerStatement) {
		in, args := idList(ids)
		if err := j.checkIDs(ctx, tx, op, in, args, ids); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sales SET acked_at = ? WHERE acked_at IS NULL AND id IN `+in, append([]any{now}, args...)...); err != nil {
			return classify(op, err)
		}
	}
	for ids := range slices.Chunk(next, maxIDsPerStatement) {
		in, args := idList(ids)
		if err := j.checkIDs(ctx, tx, op, in, args, ids); err != nil {
			return err
		}
		// What setState does for stored → uploading, for every stored record at once: the
		// history line (with the attempt it starts), an offline sale's payment following
		// its record, the state; then every record's attempt count.
		at := append([]any{now}, args...)
		for _, q := range []string{
			`INSERT INTO history (seq, at, from_state, to_state, note)
				SELECT seq, ?, 'stored', 'uploading', 'upload attempt ' || (attempts + 1) FROM sales WHERE state = 'stored' AND id IN ` + in + ` ORDER BY seq`,
			`UPDATE payments SET state = 'uploading', done = 1, updated_at = ?
				WHERE state IN ('stored', 'uploading') AND sale_id IN (SELECT id FROM sales WHERE state = 'stored' AND offline = 1 AND id IN ` + in + `)`,
			`UPDATE sales SET state = 'uploading', updated_at = ? WHERE state = 'stored' AND id IN ` + in,
		} {
			if _, err := tx.ExecContext(ctx, q, at...); err != nil {
				return classify(op, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sales SET attempts = attempts + 1 WHERE id IN `+in, args...); err != nil {
			return classify(op, err)
		}
	}
	return classify(op, tx.Commit())
}

// maxIDsPerStatement bounds the ids bound to one statement (SQLite allows 32,766
// variables; a batch is at most 500 records).
const maxIDsPerStatement = 500

// idList is "(?, ?, …)" for ids and the ids as arguments.
func idList(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")", args
}

// checkIDs fails with ErrNotFound, naming the first, when an id of ids is not in the journal.
func (j *Journal) checkIDs(ctx context.Context, tx *sql.Tx, op, in string, args []any, ids []string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sales WHERE id IN `+in, args...).Scan(&n); err != nil {
		return classify(op, err)
	}
	if n == len(slices.Compact(slices.Sorted(slices.Values(ids)))) {
		return nil
	}
	for _, id := range ids {
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM sales WHERE id = ?`, id).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
		} else if err != nil {
			return classify(op, err)
		}
	}
	return nil
}

// NoteError keeps the last error met while sending a record (a failed batch, a rejected
// signature), for the technician; it does not change the state.
func (j *Journal) NoteError(ctx context.Context, id, msg string) error {
	return j.update(ctx, "note error", []string{id}, func(tx txExecer, r *Record) error {
		_, err := tx.ExecContext(ctx, `UPDATE sales SET last_error = ?, updated_at = ? WHERE seq = ?`, msg, j.now().UTC().UnixMilli(), r.Sequence)
		return err
	})
}

// txExecer is what a state change needs of its transaction: *sql.Tx, or a sqlstmt.Cache
// over one.
type txExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// update runs fn for each record, all in one transaction, through statements prepared
// once for all of them.
func (j *Journal) update(ctx context.Context, op string, ids []string, fn func(txExecer, *Record) error) error {
	return j.updateSteps(ctx, op, []updateStep{{ids, fn}})
}

// updateStep is fn to run for each of ids.
type updateStep struct {
	ids []string
	fn  func(txExecer, *Record) error
}

// updateSteps runs the steps in order, all in one transaction (none when they name no
// record), through statements prepared once for all of them.
func (j *Journal) updateSteps(ctx context.Context, op string, steps []updateStep) error {
	n := 0
	for _, st := range steps {
		n += len(st.ids)
	}
	if n == 0 {
		return nil
	}
	sqlTx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return classify(op, err)
	}
	defer sqlTx.Rollback()
	tx := sqlstmt.New(sqlTx)
	defer tx.Close()
	for _, st := range steps {
		for _, id := range st.ids {
			r, err := scanRecord(tx.QueryRowContext(ctx, selectRecord+" WHERE id = ?", id))
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%s %s: %w", op, id, ErrNotFound)
			} else if err != nil {
				return classify(op, err)
			}
			if err := st.fn(tx, &r.Record); err != nil {
				return classify(op, err)
			}
		}
	}
	tx.Close()
	return classify(op, sqlTx.Commit())
}

// Get returns the record with the given id, with its history.
func (j *Journal) Get(ctx context.Context, id string) (Record, error) {
	return j.one(ctx, "id = ?", id)
}

// BySequence returns the record with the given sequence number, with its history.
func (j *Journal) BySequence(ctx context.Context, seq uint64) (Record, error) {
	return j.one(ctx, "seq = ?", seq)
}

// ByIdempotencyKey returns the record journaled under the POS app's idempotency key.
func (j *Journal) ByIdempotencyKey(ctx context.Context, key string) (Record, error) {
	return j.one(ctx, "idempotency_key = ?", key)
}

func (j *Journal) one(ctx context.Context, where string, arg any) (Record, error) {
	r, err := scanRecord(j.r.QueryRowContext(ctx, selectRecord+" WHERE "+where, arg))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("sale %v: %w", arg, ErrNotFound)
	} else if err != nil {
		return Record{}, classify("read journal", err)
	}
	rows, err := j.r.QueryContext(ctx, `SELECT at, from_state, to_state, note FROM history WHERE seq = ? ORDER BY id`, r.Sequence)
	if err != nil {
		return Record{}, classify("read journal", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c Change
		var at int64
		if err := rows.Scan(&at, &c.From, &c.To, &c.Note); err != nil {
			return Record{}, classify("read journal", err)
		}
		c.At = time.UnixMilli(at).UTC()
		r.History = append(r.History, c)
	}
	if err := rows.Err(); err != nil {
		return Record{}, classify("read journal", err)
	}
	j.flag(&r.Record)
	return r.Record, nil
}

// Credential decrypts a record's credential, for the uplink to send. It needs the key.
// The plaintext must not be logged; show MaskCredential of it, or the record's
// CredentialMasked.
func (j *Journal) Credential(ctx context.Context, id string) (string, error) {
	if j.opts.Key == nil {
		return "", fmt.Errorf("read credential: %w", ErrNoKey)
	}
	var sealed []byte
	err := j.r.QueryRowContext(ctx, `SELECT credential FROM sales WHERE id = ?`, id).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sale %s: %w", id, ErrNotFound)
	} else if err != nil {
		return "", classify("read credential", err)
	}
	if sealed == nil {
		return "", nil
	}
	pt, err := j.opts.Key.open(id, sealed)
	if err != nil {
		return "", fmt.Errorf("sale %s: %w", id, err)
	}
	return string(pt), nil
}

// Filter selects records for List and Each.
type Filter struct {
	State    posagent.State // empty: every state
	AfterSeq uint64         // only records with a greater sequence
	Limit    int            // 0: no limit
}

// List returns the records matching f in sequence order, without history.
func (j *Journal) List(ctx context.Context, f Filter) ([]Record, error) {
	var out []Record
	err := j.Each(ctx, f, func(r Record) error { out = append(out, r); return nil })
	return out, err
}

// Each calls fn for each record matching f in sequence order, reading in pages so a long
// export neither holds a read transaction open for its whole length nor the whole journal
// in memory. An error from fn stops it and is returned.
func (j *Journal) Each(ctx context.Context, f Filter, fn func(Record) error) error {
	const page = 500
	after, left := f.AfterSeq, f.Limit
	for {
		n := page
		if f.Limit > 0 && left < n {
			n = left
		}
		where, args := "seq > ?", []any{after}
		if f.State != "" {
			where += " AND state = ?"
			args = append(args, string(f.State))
		}
		recs, err := j.query(ctx, selectRecord+" WHERE "+where+" ORDER BY seq LIMIT ?", append(args, n)...)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(recs) < n {
			return nil
		}
		after = recs[len(recs)-1].Sequence
		if f.Limit > 0 {
			if left -= len(recs); left == 0 {
				return nil
			}
		}
	}
}

func (j *Journal) query(ctx context.Context, q string, args ...any) ([]Record, error) {
	rows, err := j.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, classify("read journal", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, classify("read journal", err)
		}
		j.flag(&r.Record)
		out = append(out, r.Record)
	}
	return out, classify("read journal", rows.Err())
}

// flag sets Overdue from the policy's MaxAge.
func (j *Journal) flag(r *Record) {
	r.Overdue = r.State.Outstanding() && j.opts.Policy.MaxAge > 0 && j.now().Sub(r.CapturedAt) > j.opts.Policy.MaxAge
}

const selectRecord = `SELECT seq, id, terminal, idempotency_key, reference, captured_at, amount, currency, method, scheme,
	credential_tag, credential_masked, offline, state, attempts, last_error, updated_at, acked_at, prev_hash, hash, mac, kind, parent FROM sales`

type scanner interface{ Scan(...any) error }

// row is a Record plus columns the API does not show.
type row struct {
	Record
	credTag []byte
}

func scanRecord(s scanner) (row, error) {
	var r row
	var captured, updated int64
	var acked sql.NullInt64
	var cur, method, scheme, state, kind string
	err := s.Scan(&r.Sequence, &r.ID, &r.Terminal, &r.IdempotencyKey, &r.Reference, &captured, &r.Amount.Minor, &cur,
		&method, &scheme, &r.credTag, &r.CredentialMasked, &r.Offline, &state, &r.Attempts, &r.LastError, &updated, &acked,
		&r.PrevHash, &r.Hash, &r.MAC, &kind, &r.Parent)
	r.Kind = posagent.Kind(kind)
	if err != nil {
		return row{}, err
	}
	c, err := posagent.LookupCurrency(cur)
	if err != nil {
		c = posagent.Currency{Code: cur} // keep what is stored readable; Verify still covers it
	}
	r.Amount.Currency = c
	r.Method, r.Scheme, r.State = posagent.Method(method), posagent.Scheme(scheme), posagent.State(state)
	r.CapturedAt, r.UpdatedAt = time.UnixMilli(captured).UTC(), time.UnixMilli(updated).UTC()
	if acked.Valid {
		r.AckedAt = time.UnixMilli(acked.Int64).UTC()
	}
	return r, nil
}

func kindOf(k posagent.Kind) posagent.Kind {
	if k == "" {
		return posagent.KindSale
	}
	return k
}

// RefundError is a refund the journal refuses: what was wrong, for the cashier.
type RefundError struct{ Msg string }

func (e *RefundError) Error() string { return e.Msg }

// Unwrap returns ErrRefund.
func (e *RefundError) Unwrap() error { return ErrRefund }

// ErrRefund: a refund the sale does not allow (not approved, another currency, more than
// is left).
var ErrRefund = errors.New("refund refused")

// checkRefund applies the refund rules inside the writing transaction.
func checkRefund(ctx context.Context, tx *sql.Tx, parent string, a posagent.Amount) error {
	sale, err := scanRecord(tx.QueryRowContext(ctx, selectRecord+" WHERE id = ?", parent))
	if errors.Is(err, sql.ErrNoRows) {
		return &RefundError{fmt.Sprintf("sale %s is not in the journal", parent)}
	} else if err != nil {
		return classify("check refund", err)
	}
	switch {
	case sale.Kind != posagent.KindSale:
		return &RefundError{"a refund cannot be refunded"}
	case sale.State != posagent.StateApproved:
		return &RefundError{fmt.Sprintf("sale %d is %s: only an approved sale can be refunded", sale.Sequence, sale.State)}
	case sale.Amount.Currency != a.Currency:
		return &RefundError{fmt.Sprintf("the sale is in %s, the refund in %s", sale.Amount.Currency.Code, a.Currency.Code)}
	}
	left, err := refundable(ctx, tx, sale.Record)
	if err != nil {
		return err
	}
	if a.Minor > left {
		return &RefundError{fmt.Sprintf("%s %s is more than is left to refund of sale %d (%s %s)",
			FormatAmount(a.Minor, a.Currency), a.Currency.Code, sale.Sequence, FormatAmount(left, a.Currency), a.Currency.Code)}
	}
	return nil
}

// refundable is what is left to refund of a sale: its amount less its refunds that are not
// declined or failed (a refund in flight counts: it may go through).
func refundable(ctx context.Context, q querier, sale Record) (int64, error) {
	var refunded int64
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(amount), 0) FROM sales WHERE parent = ? AND kind = 'refund'
		AND state NOT IN ('declined', 'failed', 'canceled')`, sale.ID).Scan(&refunded); err != nil {
		return 0, classify("check refund", err)
	}
	return sale.Amount.Minor - refunded, nil
}

// Refunds returns the refunds of a sale, in sequence order.
func (j *Journal) Refunds(ctx context.Context, saleID string) ([]Record, error) {
	return j.query(ctx, selectRecord+` WHERE parent = ? AND kind = 'refund' ORDER BY seq`, saleID)
}
