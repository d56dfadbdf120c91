package acquirer

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/posagent/posagent/internal/sqlstmt"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

var schema = []string{`
CREATE TABLE IF NOT EXISTS terminals (
	id         TEXT PRIMARY KEY,
	secret     BLOB NOT NULL,            -- AES-GCM under the master key: nonce || ciphertext
	policy     TEXT NOT NULL,
	created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
	terminal   TEXT NOT NULL,
	nonce      TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (terminal, nonce)
);
CREATE TABLE IF NOT EXISTS authorizations (
	terminal        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,       -- hash of the request, to tell a retry from a reuse
	response        TEXT NOT NULL,
	PRIMARY KEY (terminal, idempotency_key)
);
CREATE TABLE IF NOT EXISTS records (
	terminal        TEXT NOT NULL,
	sequence        INTEGER NOT NULL,
	id              TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,
	hash            TEXT NOT NULL,
	prev_hash       TEXT NOT NULL,
	body            TEXT NOT NULL,
	received_at     TEXT NOT NULL,
	PRIMARY KEY (terminal, sequence),
	UNIQUE (terminal, idempotency_key)
);
CREATE TABLE IF NOT EXISTS results (
	cursor   INTEGER PRIMARY KEY AUTOINCREMENT,
	terminal TEXT NOT NULL,
	body     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS results_terminal ON results (terminal, cursor);
CREATE TABLE IF NOT EXISTS orders (
	reference  TEXT PRIMARY KEY,
	terminal   TEXT NOT NULL,
	polls      INTEGER NOT NULL DEFAULT 0,
	body       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_id ON records (terminal, id);
CREATE TABLE IF NOT EXISTS refunds (
	terminal        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,       -- hash of the refund (refundIdentity), to tell a retry from a reuse
	refund_id       TEXT NOT NULL,       -- the refund record's id
	sale_id         TEXT NOT NULL,       -- the refunded sale's id
	sequence        INTEGER NOT NULL,
	amount          INTEGER NOT NULL,
	currency        TEXT NOT NULL,
	decision        TEXT NOT NULL,       -- approved | declined
	reason          TEXT NOT NULL,       -- the terminal's reason for the refund
	response        TEXT NOT NULL,       -- JSON wire.RefundResponse, answered again for ever
	source          TEXT NOT NULL,       -- online | batch
	captured_at     INTEGER NOT NULL,    -- Unix ms: the refund's capture time (totals)
	created_at      TEXT NOT NULL,
	PRIMARY KEY (terminal, idempotency_key)
);
CREATE UNIQUE INDEX IF NOT EXISTS refunds_id ON refunds (terminal, refund_id);
CREATE INDEX IF NOT EXISTS refunds_sale ON refunds (terminal, sale_id);`}

// sqliteVersion is the schema version (PRAGMA user_version) upgradeSQLite brings a
// database to. Version 1 is the schema above, as the first acquirerd created it (its
// databases say user_version 0).
// Version 3 adds the authorization's capture time and scheme (for totals) and the refunds
// table (created with the schema).
// Version 4 adds the terminals' rotation and revocation columns (terminalColumns).
// Version 5 adds the high_water table (each terminal's stored high-water mark, so that a
// batch's answer reads only the records above it, not the terminal's whole history) and
// the index on nonces' expiry that the purge of expired nonces uses.
const sqliteVersion = 5

// terminalColumns are the columns version 4 adds to terminals (see TerminalAdmin).
var terminalColumns = []struct{ name, decl string }{
	{"prev_secret", "BLOB"},
	{"prev_until", "INTEGER NOT NULL DEFAULT 0"}, // Unix ms
	{"revoked_at", "INTEGER NOT NULL DEFAULT 0"}, // Unix ms; 0: not revoked
}

// authorizationColumns are the columns version 2 adds to authorizations: the sale, its
// state, and what a pending or reversed authorization needs (see authRow).
var authorizationColumns = []struct{ name, decl string }{
	{"sale_id", "TEXT NOT NULL DEFAULT ''"},
	{"sequence", "INTEGER NOT NULL DEFAULT 0"},
	{"amount", "INTEGER NOT NULL DEFAULT 0"},
	{"currency", "TEXT NOT NULL DEFAULT ''"},
	{"method", "TEXT NOT NULL DEFAULT ''"},
	{"reference", "TEXT NOT NULL DEFAULT ''"},
	{"state", "TEXT NOT NULL DEFAULT ''"},
	{"created_at", "TEXT NOT NULL DEFAULT ''"},
	{"pending_until", "INTEGER NOT NULL DEFAULT 0"}, // Unix ms
	{"final", "TEXT NOT NULL DEFAULT ''"},
	{"final_state", "TEXT NOT NULL DEFAULT ''"},
	{"reversal", "TEXT NOT NULL DEFAULT ''"},
	{"captured_at", "INTEGER NOT NULL DEFAULT 0"}, // Unix ms; 0: not known (before version 3)
	{"scheme", "TEXT NOT NULL DEFAULT ''"},
}

// upgradeSQLite brings the schema to sqliteVersion in one transaction, idempotently: a
// column already there is not added again, and rows of version 1 get their sale id and
// state from the answer they stored (amount, currency and sequence stay unknown: 0).
func upgradeSQLite(db *sql.DB) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version >= sqliteVersion {
		return nil
	}
	have := map[string]bool{}
	rows, err := tx.Query(`SELECT name FROM pragma_table_info('authorizations')`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range authorizationColumns {
		if have[c.name] {
			continue
		}
		if _, err := tx.Exec(`ALTER TABLE authorizations ADD COLUMN ` + c.name + ` ` + c.decl); err != nil {
			return fmt.Errorf("add authorizations.%s: %w", c.name, err)
		}
	}
	for _, c := range terminalColumns {
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM pragma_table_info('terminals') WHERE name = ?`, c.name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := tx.Exec(`ALTER TABLE terminals ADD COLUMN ` + c.name + ` ` + c.decl); err != nil {
			return fmt.Errorf("add terminals.%s: %w", c.name, err)
		}
	}
	for _, stmt := range []string{
		`UPDATE authorizations SET sale_id = COALESCE(json_extract(response, '$.id'), ''),
			state = COALESCE(json_extract(response, '$.decision'), '') WHERE sale_id = '' AND content <> ''`,
		`CREATE INDEX IF NOT EXISTS authorizations_sale ON authorizations (terminal, sale_id)`,
		`CREATE INDEX IF NOT EXISTS results_record ON results (terminal, ` + sqliteSQL.jsonField("body", "id") + `)`,
		`CREATE TABLE IF NOT EXISTS high_water (terminal TEXT PRIMARY KEY, sequence INTEGER NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS nonces_expires ON nonces (expires_at)`,
		fmt.Sprintf(`PRAGMA user_version = %d`, sqliteVersion),
	} {
		if _, err := tx.Exec(stmt); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// SQLite is the embedded Store: one file, WAL, synchronous=FULL, writes serialised through
// one connection in BEGIN IMMEDIATE transactions.
type SQLite struct {
	db    *sql.DB
	aead  cipher.AEAD
	now   func() time.Time
	calls atomic.Uint64 // Seen calls, for the amortised purge of expired nonces
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens (creating if needed) the store at path; masterKey (32 bytes) encrypts
// the terminals' secrets at rest.
func OpenSQLite(path string, masterKey []byte) (*SQLite, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate&_foreign_keys=on"
	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open acquirer store: %w", err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serialises writes anyway
	for _, stmt := range schema {
		if _, err := db.Exec(stmt); err != nil {
			db.Close()
			return nil, fmt.Errorf("open acquirer store %s: migrate: %w", path, err)
		}
	}
	if err := upgradeSQLite(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open acquirer store %s: upgrade: %w", path, err)
	}
	return &SQLite{db: db, aead: aead, now: time.Now}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("master key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// SetClock implements Clocked.
func (s *SQLite) SetClock(now func() time.Time) { s.now = now }

// tx runs fn in a transaction, which also records the request's deferred nonce (see
// recordDeferredNonce).
func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := recordDeferredNonce(ctx, tx, sqliteSQL, s.now()); err != nil {
		tx.Rollback()
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	nonceCommitted(ctx)
	return nil
}

// Secret implements Store: the signing key derived from the provisioned secret.
func (s *SQLite) Secret(ctx context.Context, terminal string) ([]byte, error) {
	return signingSecret(ctx, s, terminal)
}

// signingKeyOf derives the request-signing key from a provisioned secret, and clears it.
func signingKeyOf(terminal string, secret []byte) ([]byte, error) {
	defer clear(secret)
	key, err := offline.NewKey(secret)
	if err != nil {
		return nil, fmt.Errorf("look up terminal %s: %w", terminal, err)
	}
	return key.SigningKey(), nil
}

// ProvisionedSecret implements Store. A secret stored by an older acquirerd as its 64 hex
// digits (what the terminal's key file holds) is decoded to the 32 bytes the terminal uses.
func (s *SQLite) ProvisionedSecret(ctx context.Context, terminal string) ([]byte, error) {
	return currentSecret(ctx, s.db, sqliteSQL, s.aead, terminal)
}

// unsealSecret decrypts a terminal's sealed secret (see sealSecret).
func unsealSecret(aead cipher.AEAD, terminal string, sealed []byte) ([]byte, error) {
	n := aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("look up terminal: stored secret is corrupt")
	}
	secret, err := aead.Open(nil, sealed[:n], sealed[n:], []byte(terminal))
	if err != nil {
		return nil, errors.New("look up terminal: cannot decrypt the secret (wrong master key?)")
	}
	if len(secret) == 2*offline.KeySize {
		if raw, err := hex.DecodeString(string(secret)); err == nil {
			clear(secret)
			secret = raw
		}
	}
	return secret, nil
}

// Seen implements Store and signing.Nonces. An expired nonce may be used again (its
// timestamp is then stale anyway). About one call in 1024 also purges expired nonces,
// through the index on their expiry.
func (s *SQLite) Seen(ctx context.Context, terminal, nonce string, expires time.Time) (bool, error) {
	seen := false
	purge := s.calls.Add(1)%1024 == 1
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now().Unix()
		if purge {
			if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at < ?`, now); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO nonces (terminal, nonce, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (terminal, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at < ?`,
			terminal, nonce, expires.Unix(), now)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		seen = n == 0
		return err
	})
	return seen, err
}

// AddTerminal implements Store.
func (s *SQLite) AddTerminal(ctx context.Context, terminal string, secret []byte, policy wire.Policy) error {
	sealed, err := sealSecret(s.aead, terminal, secret)
	if err != nil {
		return err
	}
	p, _ := json.Marshal(policy)
	_, err = s.db.ExecContext(ctx, `INSERT INTO terminals (id, secret, policy, created_at) VALUES (?, ?, ?, ?)`,
		terminal, sealed, string(p), s.now().UTC().Format(time.RFC3339))
	if isUnique(err) {
		return fmt.Errorf("terminal %s: %w", terminal, ErrExists)
	}
	return err
}

// Config implements Store.
func (s *SQLite) Config(ctx context.Context, terminal string) (wire.TerminalConfig, error) {
	return loadConfig(ctx, s.db, `SELECT policy FROM terminals WHERE id = ?`, terminal)
}

// Authorize implements Store.
func (s *SQLite) Authorize(ctx context.Context, terminal string, req wire.AuthorizationRequest, decide func() Outcome) (wire.AuthorizationResponse, error) {
	var resp wire.AuthorizationResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		resp, err = authorizeTx(ctx, tx, sqliteSQL, terminal, req, decide, s.now())
		return err
	})
	return resp, err
}

// AuthorizationStatus implements Store.
func (s *SQLite) AuthorizationStatus(ctx context.Context, terminal, id string) (wire.AuthorizationStatus, error) {
	var st wire.AuthorizationStatus
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = statusTx(ctx, tx, sqliteSQL, terminal, id, s.now())
		return err
	})
	return st, err
}

// Reverse implements Store.
func (s *SQLite) Reverse(ctx context.Context, terminal string, req wire.ReversalRequest) (wire.ReversalResponse, error) {
	var rev wire.ReversalResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		rev, err = reverseTx(ctx, tx, sqliteSQL, terminal, req, s.now())
		return err
	})
	return rev, err
}

// Ledger implements Store. It holds the store's one connection while it runs.
func (s *SQLite) Ledger(ctx context.Context, terminal string, fn func(wire.LedgerEntry) error) error {
	return ledger(ctx, s.db, sqliteSQL, s.now(), terminal, fn)
}

// ChainHead implements Store.
func (s *SQLite) ChainHead(ctx context.Context, terminal string) (wire.ChainHead, error) {
	return chainHead(ctx, s.db, `SELECT sequence, hash FROM records WHERE terminal = ? ORDER BY sequence DESC LIMIT 1`, terminal)
}

// StoreBatch implements Store.
func (s *SQLite) StoreBatch(ctx context.Context, terminal string, recs []wire.Record, check func(prev *wire.Record, rec wire.Record) string, decide func(wire.Record) wire.Result) (wire.BatchResponse, error) {
	var out wire.BatchResponse
	err := s.tx(ctx, func(sqlTx *sql.Tx) error {
		tx := sqlstmt.New(sqlTx)
		defer tx.Close()
		out = wire.BatchResponse{Results: make([]wire.RecordResult, 0, len(recs))}
		var last *wire.Record // the record this batch stored last
		for i, rec := range recs {
			var prev *wire.Record
			if last != nil && last.Sequence+1 == rec.Sequence {
				prev = last
			}
			res, err := s.storeRecord(ctx, tx, terminal, rec, prev, check, decide)
			if err != nil {
				return err
			}
			last = nil
			if res.Status == wire.Accepted {
				last = &recs[i]
			}
			out.Results = append(out.Results, res)
		}
		var err error
		out.HighWater, out.Gaps, err = highWater(ctx, tx, terminal)
		return err
	})
	return out, err
}

// storeRecord stores one record of a batch. prev, when not nil, is the record of the
// sequence before, stored by this batch just now (so not read back).
func (s *SQLite) storeRecord(ctx context.Context, tx *sqlstmt.Cache, terminal string, rec wire.Record, prev *wire.Record, check func(*wire.Record, wire.Record) string, decide func(wire.Record) wire.Result) (wire.RecordResult, error) {
	res := wire.RecordResult{Sequence: rec.Sequence, ID: rec.ID}
	content := contentHash(recordIdentity(rec))
	var stored string
	err := tx.QueryRowContext(ctx, `SELECT content FROM records WHERE terminal = ? AND sequence = ?`, terminal, rec.Sequence).Scan(&stored)
	switch {
	case err == nil && stored == content:
		res.Status = wire.Duplicate
		return res, nil
	case err == nil:
		res.Status, res.Reason = wire.Rejected, fmt.Sprintf("fork: sequence %d is already stored with other content", rec.Sequence)
		return res, nil
	case !errors.Is(err, sql.ErrNoRows):
		return res, err
	}
	var otherSeq uint64
	err = tx.QueryRowContext(ctx, `SELECT sequence FROM records WHERE terminal = ? AND idempotency_key = ?`, terminal, rec.IdempotencyKey).Scan(&otherSeq)
	if err == nil {
		res.Status, res.Reason = wire.Rejected, fmt.Sprintf("conflict: idempotency key already used by sequence %d", otherSeq)
		return res, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return res, err
	}
	if prev == nil {
		var prevBody string
		err = tx.QueryRowContext(ctx, `SELECT body FROM records WHERE terminal = ? AND sequence = ?`, terminal, rec.Sequence-1).Scan(&prevBody)
		if err == nil {
			prev = new(wire.Record)
			if err := json.Unmarshal([]byte(prevBody), prev); err != nil {
				return res, err
			}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return res, err
		}
	}
	if reason := check(prev, rec); reason != "" {
		res.Status, res.Reason = wire.Rejected, reason
		return res, nil
	}
	// A record filling a gap must also be the one its stored successor chains onto.
	var nextPrev string
	err = tx.QueryRowContext(ctx, `SELECT prev_hash FROM records WHERE terminal = ? AND sequence = ?`, terminal, rec.Sequence+1).Scan(&nextPrev)
	if err == nil && nextPrev != rec.Hash {
		res.Status, res.Reason = wire.Rejected, fmt.Sprintf("fork: sequence %d is stored chained onto another record", rec.Sequence+1)
		return res, nil
	} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return res, err
	}
	stripped := rec
	stripped.Credential = "" // the acquirer authorizes with it once; it is not kept
	body, _ := json.Marshal(stripped)
	if _, err := tx.ExecContext(ctx, `INSERT INTO records (terminal, sequence, id, idempotency_key, content, hash, prev_hash, body, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, terminal, rec.Sequence, rec.ID, rec.IdempotencyKey, content, rec.Hash, rec.PrevHash,
		string(body), s.now().UTC().Format(time.RFC3339Nano)); err != nil {
		return res, err
	}
	switch {
	case isRefund(rec) && (rec.State == "stored" || rec.State == "uploading"):
		// A refund kept offline: decided now by the refund rules (or the decision made
		// online for its key stands), and its outcome goes to the results feed.
		r, err := refundRecordResult(ctx, tx, sqliteSQL, terminal, rec, s.now())
		if err != nil {
			return res, err
		}
		b, _ := json.Marshal(r)
		if _, err := tx.ExecContext(ctx, `INSERT INTO results (terminal, body) VALUES (?, ?)`, terminal, string(b)); err != nil {
			return res, err
		}
	case isRefund(rec):
		// Decided online (approved or declined): stored as it is.
	case rec.State == "stored" || rec.State == "uploading":
		r := decide(rec)
		// A sale the terminal sent for online authorization, whose answer it never got,
		// then kept offline: the decision already made stands, never a second one.
		a, ok, err := onlineOutcome(ctx, tx, sqliteSQL, terminal, rec.IdempotencyKey, s.now())
		if err != nil {
			return res, err
		}
		if ok {
			r.Decision, r.Reason, r.AuthCode, r.DecidedAt = a.Decision, a.Reason, a.AuthCode, a.DecidedAt
		}
		b, _ := json.Marshal(r)
		if _, err := tx.ExecContext(ctx, `INSERT INTO results (terminal, body) VALUES (?, ?)`, terminal, string(b)); err != nil {
			return res, err
		}
	}
	res.Status = wire.Accepted
	return res, nil
}

// highWater returns the highest sequence up to which every record is stored, and the gaps
// above it. It reads only the records above the terminal's stored high-water mark
// (normally just the batch) and advances the mark: its cost does not grow with the
// terminal's history. Records are never deleted, so the stored mark only rises.
func highWater(ctx context.Context, tx *sqlstmt.Cache, terminal string) (uint64, []wire.Gap, error) {
	var base uint64
	err := tx.QueryRowContext(ctx, `SELECT sequence FROM high_water WHERE terminal = ?`, terminal).Scan(&base)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT sequence FROM records WHERE terminal = ? AND sequence > ? ORDER BY sequence`, terminal, base)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var seqs []uint64
	for rows.Next() {
		var q uint64
		if err := rows.Scan(&q); err != nil {
			return 0, nil, err
		}
		seqs = append(seqs, q)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	hw, gs, err := gapsFrom(base, seqs)
	if err != nil || hw <= base {
		return hw, gs, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO high_water (terminal, sequence) VALUES (?, ?)
		ON CONFLICT (terminal) DO UPDATE SET sequence = excluded.sequence`, terminal, hw)
	return hw, gs, err
}

// gapsFrom computes the high-water mark and the missing runs of a sequence list above
// base, every sequence up to base being stored.
func gapsFrom(base uint64, seqs []uint64) (uint64, []wire.Gap, error) {
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	hw := base
	var gs []wire.Gap
	next := base + 1
	contiguous := true
	for _, q := range seqs {
		if q > next {
			gs = append(gs, wire.Gap{From: next, To: q - 1})
			contiguous = false
		}
		if contiguous {
			hw = q
		}
		next = q + 1
	}
	return hw, gs, nil
}

// Results implements Store.
func (s *SQLite) Results(ctx context.Context, terminal string, after uint64, limit int) (wire.Results, error) {
	if after >= math.MaxInt64 {
		return wire.Results{Results: []wire.Result{}, Next: after}, nil // beyond any cursor (SQLite integers are signed 64-bit)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT cursor, body FROM results WHERE terminal = ? AND cursor > ? ORDER BY cursor LIMIT ?`, terminal, int64(after), limit)
	if err != nil {
		return wire.Results{Results: []wire.Result{}, Next: after}, err
	}
	return scanResults(rows, after)
}

// Order implements Store.
func (s *SQLite) Order(ctx context.Context, terminal, reference string) (wire.Order, int, error) {
	var o wire.Order
	polls := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var owner, body string
		err := tx.QueryRowContext(ctx, `SELECT terminal, polls, body FROM orders WHERE reference = ?`, reference).Scan(&owner, &polls, &body)
		if errors.Is(err, sql.ErrNoRows) {
			o, polls = wire.Order{Reference: reference, State: "pending"}, 1
			b, _ := json.Marshal(o)
			_, err = tx.ExecContext(ctx, `INSERT INTO orders (reference, terminal, polls, body) VALUES (?, ?, 1, ?)`, reference, terminal, string(b))
			return err
		}
		if err != nil {
			return err
		}
		if owner != terminal {
			return ErrNotFound
		}
		polls++
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET polls = ? WHERE reference = ?`, polls, reference); err != nil {
			return err
		}
		return json.Unmarshal([]byte(body), &o)
	})
	return o, polls, err
}

// Refund implements Store.
func (s *SQLite) Refund(ctx context.Context, terminal string, req wire.RefundRequest) (wire.RefundResponse, error) {
	var resp wire.RefundResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		resp, err = refundTx(ctx, tx, sqliteSQL, terminal, req, refundOnline, s.now())
		return err
	})
	return resp, err
}

// CloseOrder implements Store.
func (s *SQLite) CloseOrder(ctx context.Context, terminal, reference string, payFirst bool) (wire.OrderClose, error) {
	var out wire.OrderClose
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = closeOrderTx(ctx, tx, sqliteSQL, terminal, reference, payFirst, s.now())
		return err
	})
	return out, err
}

// Totals implements Store.
func (s *SQLite) Totals(ctx context.Context, terminal string, from, to time.Time) (wire.Totals, error) {
	return totals(ctx, s.db, sqliteSQL, s.now(), terminal, from, to)
}

// SetOrder implements Store.
func (s *SQLite) SetOrder(ctx context.Context, reference, state, scheme string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return setOrderTx(ctx, tx, `SELECT body FROM orders WHERE reference = ?`,
			`UPDATE orders SET body = ? WHERE reference = ?`, reference, state, scheme, at)
	})
}

// recordIdentity is what makes two uploads "the same record": everything but the state the
// terminal had when sending and the credential.
func recordIdentity(r wire.Record) wire.Record {
	r.State, r.Credential = "", ""
	return r
}

func contentHash(v any) string {
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func isUnique(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.Code == sqlite3.ErrConstraint
	}
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint")
}
