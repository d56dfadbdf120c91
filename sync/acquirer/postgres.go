package acquirer

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	mrand "math/rand/v2"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

//go:embed migrations/postgres/*.sql
var pgMigrations embed.FS

// Advisory lock classes (the first key of pg_advisory_xact_lock(int, int)).
const (
	lockMigrate  = 0x7061 // one node migrates at a time
	lockTerminal = 0x7062 // one writer per terminal: batches, authorizations, refunds, order closes
)

// pgMaxAttempts bounds the attempts of one Store call when PostgreSQL reports a
// serialization failure, a deadlock or (where a retry turns it into a duplicate) a unique
// violation.
const pgMaxAttempts = 8

// Postgres is the Store for fleet scale: any number of stateless acquirerd nodes share one
// PostgreSQL database, which is the source of truth.
//
// Concurrency: every method is one READ COMMITTED transaction. Deduplication rests on the
// unique keys ((terminal, sequence) and (terminal, idempotency key) of records,
// (terminal, idempotency key) of authorizations, (terminal, nonce) of nonces). Writes that
// read before they decide (StoreBatch, Authorize) first take a transaction-scoped advisory
// lock on the terminal, so two nodes given the same batch at once serialise: one stores,
// the other answers duplicate. That lock also makes a terminal's results-feed cursors
// (a BIGSERIAL) grow in commit order, so a reader that has seen cursor C never later finds
// a smaller one committed. Serialization failures, deadlocks and unique violations roll
// the transaction back and run it again (the decide callbacks may then be called again for
// the same record; only the committed decision is stored and answered).
type Postgres struct {
	db    *sql.DB
	aead  cipher.AEAD
	now   func() time.Time
	calls atomic.Uint64 // Seen calls, for the amortised purge of expired nonces
}

var _ Store = (*Postgres)(nil)

// OpenPostgres connects to the database at dsn (a postgres:// URL or a key=value
// connection string, as libpq takes), applies the embedded migrations that are not
// applied yet, and checks masterKey (32 bytes, encrypts the terminals' secrets at rest)
// against the key the database was first opened with: every node must use the same key.
func OpenPostgres(ctx context.Context, dsn string, masterKey []byte) (*Postgres, error) {
	aead, err := newAEAD(masterKey)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open acquirer store: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Postgres{db: db, aead: aead, now: time.Now}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		// pgconn's errors name host, user and database, never the password.
		return nil, fmt.Errorf("open acquirer store: connect: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open acquirer store: migrate: %w", err)
	}
	if err := s.checkKey(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// migrate applies the embedded migrations in order, each once, under an advisory lock.
func (s *Postgres) migrate(ctx context.Context) error {
	names, err := fs.Glob(pgMigrations, "migrations/postgres/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockMigrate); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return err
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range names {
		base := path.Base(name)
		num, _, _ := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return fmt.Errorf("migration %s: the name must start with its number", base)
		}
		if applied[v] {
			continue
		}
		body, err := pgMigrations.ReadFile(name)
		if err != nil {
			return err
		}
		// Without arguments pgx sends the file in the simple protocol: many statements.
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			return fmt.Errorf("%s: %w", base, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, v, base); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// keyCheck is what the master-key check seals; the associated data names its use.
var keyCheck = []byte("posagent acquirer master key check")

// checkKey stores a value sealed under the master key the first time, and refuses to open
// with a key that cannot open it.
func (s *Postgres) checkKey(ctx context.Context) error {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := s.aead.Seal(nonce, nonce, keyCheck, []byte("meta"))
	if _, err := s.db.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('key_check', $1) ON CONFLICT (name) DO NOTHING`, sealed); err != nil {
		return fmt.Errorf("open acquirer store: %w", err)
	}
	var stored []byte
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'key_check'`).Scan(&stored); err != nil {
		return fmt.Errorf("open acquirer store: %w", err)
	}
	n := s.aead.NonceSize()
	if len(stored) < n {
		return errors.New("open acquirer store: the master-key check in the database is corrupt")
	}
	if _, err := s.aead.Open(nil, stored[:n], stored[n:], []byte("meta")); err != nil {
		return errors.New("open acquirer store: the master key is not the one this database was created with (every node must use the same --master-key-file)")
	}
	return nil
}

// Close closes the connection pool.
func (s *Postgres) Close() error { return s.db.Close() }

// SetClock implements Clocked.
func (s *Postgres) SetClock(now func() time.Time) { s.now = now }

// retryable reports whether running the transaction again may succeed.
func retryable(err error, unique bool) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	case "23505": // unique_violation: another node stored it first; again, it is a duplicate
		return unique
	}
	return false
}

func isPgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// tx runs fn in one transaction, again when PostgreSQL says a retry may succeed. fn must
// set its results afresh on every run.
func (s *Postgres) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < pgMaxAttempts; attempt++ {
		if attempt > 0 {
			d := time.Duration(mrand.Int64N(int64(time.Millisecond) << min(attempt, 6)))
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return err
			}
		}
		err = s.tx1(ctx, fn)
		if err == nil || !retryable(err, true) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", pgMaxAttempts, err)
}

func (s *Postgres) tx1(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := recordDeferredNonce(ctx, tx, postgresSQL, s.now()); err != nil {
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

// lockTerminal takes the terminal's advisory lock until the transaction ends.
func lockTerminalTx(ctx context.Context, tx *sql.Tx, terminal string) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockTerminal, terminal)
	return err
}

// Secret implements Store: the signing key derived from the provisioned secret.
func (s *Postgres) Secret(ctx context.Context, terminal string) ([]byte, error) {
	return signingSecret(ctx, s, terminal)
}

// ProvisionedSecret implements Store.
func (s *Postgres) ProvisionedSecret(ctx context.Context, terminal string) ([]byte, error) {
	return currentSecret(ctx, s.db, postgresSQL, s.aead, terminal)
}

// Seen implements Store and signing.Nonces: one INSERT … ON CONFLICT, so two nodes given
// the same nonce at once cannot both take it as new. An expired nonce may be used again
// (its timestamp is then stale anyway). About one call in 1024 also purges expired nonces.
func (s *Postgres) Seen(ctx context.Context, terminal, nonce string, expires time.Time) (bool, error) {
	now := s.now().Unix()
	purge := s.calls.Add(1)%1024 == 1
	seen := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if purge {
			if _, err := tx.ExecContext(ctx, `DELETE FROM nonces WHERE expires_at < $1`, now); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO nonces (terminal, nonce, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (terminal, nonce) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE nonces.expires_at < $4`,
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
func (s *Postgres) AddTerminal(ctx context.Context, terminal string, secret []byte, policy wire.Policy) error {
	sealed, err := sealSecret(s.aead, terminal, secret)
	if err != nil {
		return err
	}
	p, _ := json.Marshal(policy)
	_, err = s.db.ExecContext(ctx, `INSERT INTO terminals (id, secret, policy, created_at) VALUES ($1, $2, $3, $4)`,
		terminal, sealed, string(p), s.now().UTC())
	if isPgUnique(err) {
		return fmt.Errorf("terminal %s: %w", terminal, ErrExists)
	}
	return err
}

// Config implements Store.
func (s *Postgres) Config(ctx context.Context, terminal string) (wire.TerminalConfig, error) {
	return loadConfig(ctx, s.db, `SELECT policy FROM terminals WHERE id = $1`, terminal)
}

// Authorize implements Store. It holds the terminal's lock, so a decision, a reversal and
// an offline upload of the same sale on several nodes serialise: an authorization racing
// its reversal is either approved then reversed, or refused by the tombstone.
func (s *Postgres) Authorize(ctx context.Context, terminal string, req wire.AuthorizationRequest, decide func() Outcome) (wire.AuthorizationResponse, error) {
	var resp wire.AuthorizationResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockTerminalTx(ctx, tx, terminal); err != nil {
			return err
		}
		var err error
		resp, err = authorizeTx(ctx, tx, postgresSQL, terminal, req, decide, s.now())
		return err
	})
	return resp, err
}

// AuthorizationStatus implements Store.
func (s *Postgres) AuthorizationStatus(ctx context.Context, terminal, id string) (wire.AuthorizationStatus, error) {
	var st wire.AuthorizationStatus
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		st, err = statusTx(ctx, tx, postgresSQL, terminal, id, s.now())
		return err
	})
	return st, err
}

// Reverse implements Store, under the terminal's lock (see Authorize).
func (s *Postgres) Reverse(ctx context.Context, terminal string, req wire.ReversalRequest) (wire.ReversalResponse, error) {
	var rev wire.ReversalResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockTerminalTx(ctx, tx, terminal); err != nil {
			return err
		}
		var err error
		rev, err = reverseTx(ctx, tx, postgresSQL, terminal, req, s.now())
		return err
	})
	return rev, err
}

// ChainHead implements Store.
func (s *Postgres) ChainHead(ctx context.Context, terminal string) (wire.ChainHead, error) {
	return chainHead(ctx, s.db, `SELECT sequence, hash FROM records WHERE terminal = $1 ORDER BY sequence DESC LIMIT 1`, terminal)
}

// Ledger implements Store: one query, whose rows the database sorts and streams.
func (s *Postgres) Ledger(ctx context.Context, terminal string, fn func(wire.LedgerEntry) error) error {
	return ledger(ctx, s.db, postgresSQL, s.now(), terminal, fn)
}

// pgStored is what StoreBatch needs to know of a stored record.
type pgStored struct {
	content, prevHash, body string
	rec                     *wire.Record // decoded body, when needed
}

// StoreBatch implements Store with the same answers as the SQLite store, in a few round
// trips per batch: it takes the terminal's lock, reads the stored neighbours of the
// batch's sequences, the holders of its idempotency keys and its online decisions, decides
// each record in order in memory, then inserts the accepted records and their results.
func (s *Postgres) StoreBatch(ctx context.Context, terminal string, recs []wire.Record, check func(prev *wire.Record, rec wire.Record) string, decide func(wire.Record) wire.Result) (wire.BatchResponse, error) {
	var out wire.BatchResponse
	for _, rec := range recs {
		if rec.Sequence == 0 || rec.Sequence >= math.MaxInt64 {
			return out, fmt.Errorf("sequence %d is out of range", rec.Sequence)
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = wire.BatchResponse{Results: make([]wire.RecordResult, 0, len(recs))}
		if err := lockTerminalTx(ctx, tx, terminal); err != nil {
			return err
		}
		bySeq, byKey, online, err := s.neighbours(ctx, tx, terminal, recs)
		if err != nil {
			return err
		}
		var ins struct {
			seqs                                       []int64
			ids, keys, contents, hashes, prevs, bodies []string
		}
		var results []string
		// flush inserts the records and results accepted so far, so that a refund decided
		// next sees its sale even when the sale came earlier in this batch.
		flush := func() error {
			if len(ins.seqs) > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO records (terminal, sequence, id, idempotency_key, content, hash, prev_hash, body, received_at)
				SELECT $1, u.* , $9 FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u`,
					terminal, ins.seqs, ins.ids, ins.keys, ins.contents, ins.hashes, ins.prevs, ins.bodies, s.now().UTC()); err != nil {
					return err
				}
			}
			if len(results) > 0 {
				if _, err := tx.ExecContext(ctx, `INSERT INTO results (terminal, body)
				SELECT $1, u.body FROM unnest($2::text[]) WITH ORDINALITY AS u(body, n) ORDER BY u.n`, terminal, results); err != nil {
					return err
				}
			}
			ins.seqs, ins.ids, ins.keys, ins.contents, ins.hashes, ins.prevs, ins.bodies = nil, nil, nil, nil, nil, nil, nil
			results = nil
			return nil
		}
		for _, rec := range recs {
			res := wire.RecordResult{Sequence: rec.Sequence, ID: rec.ID}
			content := contentHash(recordIdentity(rec))
			if st, ok := bySeq[rec.Sequence]; ok {
				if st.content == content {
					res.Status = wire.Duplicate
				} else {
					res.Status, res.Reason = wire.Rejected, fmt.Sprintf("fork: sequence %d is already stored with other content", rec.Sequence)
				}
				out.Results = append(out.Results, res)
				continue
			}
			if other, ok := byKey[rec.IdempotencyKey]; ok {
				res.Status, res.Reason = wire.Rejected, fmt.Sprintf("conflict: idempotency key already used by sequence %d", other)
				out.Results = append(out.Results, res)
				continue
			}
			var prev *wire.Record
			if st, ok := bySeq[rec.Sequence-1]; ok {
				if st.rec == nil {
					st.rec = new(wire.Record)
					if err := json.Unmarshal([]byte(st.body), st.rec); err != nil {
						return err
					}
				}
				prev = st.rec
			}
			if reason := check(prev, rec); reason != "" {
				res.Status, res.Reason = wire.Rejected, reason
				out.Results = append(out.Results, res)
				continue
			}
			if next, ok := bySeq[rec.Sequence+1]; ok && next.prevHash != rec.Hash {
				res.Status, res.Reason = wire.Rejected, fmt.Sprintf("fork: sequence %d is stored chained onto another record", rec.Sequence+1)
				out.Results = append(out.Results, res)
				continue
			}
			refundNow := isRefund(rec) && (rec.State == "stored" || rec.State == "uploading")
			if refundNow {
				if err := flush(); err != nil {
					return err
				}
			}
			stripped := rec
			stripped.Credential = "" // the acquirer authorizes with it once; it is not kept
			body, _ := json.Marshal(stripped)
			bySeq[rec.Sequence] = &pgStored{content: content, prevHash: rec.PrevHash, body: string(body), rec: &stripped}
			byKey[rec.IdempotencyKey] = rec.Sequence
			ins.seqs = append(ins.seqs, int64(rec.Sequence))
			ins.ids = append(ins.ids, rec.ID)
			ins.keys = append(ins.keys, rec.IdempotencyKey)
			ins.contents = append(ins.contents, content)
			ins.hashes = append(ins.hashes, rec.Hash)
			ins.prevs = append(ins.prevs, rec.PrevHash)
			ins.bodies = append(ins.bodies, string(body))
			switch {
			case refundNow:
				// A refund kept offline: decided now by the refund rules (or the decision
				// made online for its key stands).
				r, err := refundRecordResult(ctx, tx, postgresSQL, terminal, rec, s.now())
				if err != nil {
					return err
				}
				b, _ := json.Marshal(r)
				results = append(results, string(b))
			case isRefund(rec):
				// Decided online: stored as it is.
			case rec.State == "stored" || rec.State == "uploading":
				r := decide(rec)
				// A sale the terminal sent for online authorization, whose answer it never
				// got, then kept offline: the decision already made stands.
				if online[rec.IdempotencyKey] {
					a, ok, err := onlineOutcome(ctx, tx, postgresSQL, terminal, rec.IdempotencyKey, s.now())
					if err != nil {
						return err
					}
					if ok {
						r.Decision, r.Reason, r.AuthCode, r.DecidedAt = a.Decision, a.Reason, a.AuthCode, a.DecidedAt
					}
				}
				b, _ := json.Marshal(r)
				results = append(results, string(b))
			}
			res.Status = wire.Accepted
			out.Results = append(out.Results, res)
		}
		if err := flush(); err != nil {
			return err
		}
		out.HighWater, out.Gaps, err = pgHighWater(ctx, tx, terminal)
		return err
	})
	return out, err
}

// neighbours reads what the batch's records are checked against: the stored records at
// each sequence and its two neighbours, the sequences holding the batch's idempotency keys,
// and which of those keys have an online authorization. Each is a point look-up per key (LATERAL),
// so the plan stays an index probe even on tables the planner has no statistics for yet.
func (s *Postgres) neighbours(ctx context.Context, tx *sql.Tx, terminal string, recs []wire.Record) (map[uint64]*pgStored, map[string]uint64, map[string]bool, error) {
	seqSet := map[int64]bool{}
	keys := make([]string, 0, len(recs))
	for _, r := range recs {
		for _, q := range []uint64{r.Sequence - 1, r.Sequence, r.Sequence + 1} {
			if q > 0 && q <= math.MaxInt64 {
				seqSet[int64(q)] = true
			}
		}
		keys = append(keys, r.IdempotencyKey)
	}
	seqs := make([]int64, 0, len(seqSet))
	for q := range seqSet {
		seqs = append(seqs, q)
	}
	bySeq := map[uint64]*pgStored{}
	rows, err := tx.QueryContext(ctx, `SELECT r.sequence, r.content, r.prev_hash, r.body FROM unnest($2::bigint[]) AS q(sequence)
		CROSS JOIN LATERAL (SELECT * FROM records WHERE terminal = $1 AND sequence = q.sequence) r`, terminal, seqs)
	if err != nil {
		return nil, nil, nil, err
	}
	for rows.Next() {
		var q int64
		st := new(pgStored)
		if err := rows.Scan(&q, &st.content, &st.prevHash, &st.body); err != nil {
			rows.Close()
			return nil, nil, nil, err
		}
		bySeq[uint64(q)] = st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	byKey := map[string]uint64{}
	rows, err = tx.QueryContext(ctx, `SELECT r.idempotency_key, r.sequence FROM unnest($2::text[]) AS k(key)
		CROSS JOIN LATERAL (SELECT * FROM records WHERE terminal = $1 AND idempotency_key = k.key) r`, terminal, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	for rows.Next() {
		var k string
		var q int64
		if err := rows.Scan(&k, &q); err != nil {
			rows.Close()
			return nil, nil, nil, err
		}
		byKey[k] = uint64(q)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, nil, err
	}
	online := map[string]bool{}
	rows, err = tx.QueryContext(ctx, `SELECT a.idempotency_key FROM unnest($2::text[]) AS k(key)
		CROSS JOIN LATERAL (SELECT * FROM authorizations WHERE terminal = $1 AND idempotency_key = k.key) a`, terminal, keys)
	if err != nil {
		return nil, nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, nil, nil, err
		}
		online[k] = true
	}
	return bySeq, byKey, online, rows.Err()
}

// pgHighWater is highWater computed by the database from the records above the
// terminal's stored high-water mark (normally just the batch), which it then advances.
// The caller holds the terminal's lock.
func pgHighWater(ctx context.Context, tx *sql.Tx, terminal string) (uint64, []wire.Gap, error) {
	var base, top int64
	err := tx.QueryRowContext(ctx, `SELECT sequence FROM high_water WHERE terminal = $1`, terminal).Scan(&base)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, nil, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(sequence), $2::bigint) FROM records WHERE terminal = $1 AND sequence > $2`,
		terminal, base).Scan(&top); err != nil {
		return 0, nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT prev + 1, sequence - 1 FROM (
			SELECT sequence, lag(sequence, 1, $2::bigint) OVER (ORDER BY sequence) AS prev
			FROM records WHERE terminal = $1 AND sequence > $2
		) s WHERE sequence > prev + 1 ORDER BY sequence`, terminal, base)
	if err != nil {
		return 0, nil, err
	}
	defer rows.Close()
	var gs []wire.Gap
	for rows.Next() {
		var from, to int64
		if err := rows.Scan(&from, &to); err != nil {
			return 0, nil, err
		}
		gs = append(gs, wire.Gap{From: uint64(from), To: uint64(to)})
	}
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	hw := uint64(top)
	if len(gs) > 0 {
		hw = gs[0].From - 1
	}
	if int64(hw) > base {
		if _, err := tx.ExecContext(ctx, `INSERT INTO high_water (terminal, sequence) VALUES ($1, $2)
			ON CONFLICT (terminal) DO UPDATE SET sequence = EXCLUDED.sequence`, terminal, int64(hw)); err != nil {
			return 0, nil, err
		}
	}
	return hw, gs, nil
}

// Results implements Store.
func (s *Postgres) Results(ctx context.Context, terminal string, after uint64, limit int) (wire.Results, error) {
	if after >= math.MaxInt64 {
		return wire.Results{Results: []wire.Result{}, Next: after}, nil // beyond any cursor
	}
	rows, err := s.db.QueryContext(ctx, `SELECT cursor, body FROM results WHERE terminal = $1 AND cursor > $2 ORDER BY cursor LIMIT $3`, terminal, int64(after), limit)
	if err != nil {
		return wire.Results{Results: []wire.Result{}, Next: after}, err
	}
	return scanResults(rows, after)
}

// Order implements Store: created pending on the first poll, and each poll counted, by two
// statements that two nodes may run at once (the count is the database's).
func (s *Postgres) Order(ctx context.Context, terminal, reference string) (wire.Order, int, error) {
	var o wire.Order
	polls := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		o, polls = wire.Order{}, 0
		b, _ := json.Marshal(wire.Order{Reference: reference, State: "pending"})
		if _, err := tx.ExecContext(ctx, `INSERT INTO orders (reference, terminal, polls, body) VALUES ($1, $2, 0, $3) ON CONFLICT (reference) DO NOTHING`,
			reference, terminal, string(b)); err != nil {
			return err
		}
		var body string
		err := tx.QueryRowContext(ctx, `UPDATE orders SET polls = polls + 1 WHERE reference = $1 AND terminal = $2 RETURNING polls, body`,
			reference, terminal).Scan(&polls, &body)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound // another terminal's order
		}
		if err != nil {
			return err
		}
		return json.Unmarshal([]byte(body), &o)
	})
	return o, polls, err
}

// Refund implements Store, under the terminal's lock: two refunds of one sale on any
// nodes serialise, so together they never exceed what was captured.
func (s *Postgres) Refund(ctx context.Context, terminal string, req wire.RefundRequest) (wire.RefundResponse, error) {
	var resp wire.RefundResponse
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockTerminalTx(ctx, tx, terminal); err != nil {
			return err
		}
		var err error
		resp, err = refundTx(ctx, tx, postgresSQL, terminal, req, refundOnline, s.now())
		return err
	})
	return resp, err
}

// CloseOrder implements Store, under the terminal's lock and the order's row lock.
func (s *Postgres) CloseOrder(ctx context.Context, terminal, reference string, payFirst bool) (wire.OrderClose, error) {
	var out wire.OrderClose
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockTerminalTx(ctx, tx, terminal); err != nil {
			return err
		}
		var err error
		out, err = closeOrderTx(ctx, tx, postgresSQL, terminal, reference, payFirst, s.now())
		return err
	})
	return out, err
}

// Totals implements Store.
func (s *Postgres) Totals(ctx context.Context, terminal string, from, to time.Time) (wire.Totals, error) {
	return totals(ctx, s.db, postgresSQL, s.now(), terminal, from, to)
}

// SetOrder implements Store.
func (s *Postgres) SetOrder(ctx context.Context, reference, state, scheme string, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return setOrderTx(ctx, tx, `SELECT body FROM orders WHERE reference = $1 FOR UPDATE`,
			`UPDATE orders SET body = $1 WHERE reference = $2`, reference, state, scheme, at)
	})
}

// sealSecret encrypts a terminal's provisioned secret under the master key, bound to the
// terminal's id.
func sealSecret(aead cipher.AEAD, terminal string, secret []byte) ([]byte, error) {
	if len(secret) != offline.KeySize {
		return nil, fmt.Errorf("terminal %s: the secret is %d bytes, want %d", terminal, len(secret), offline.KeySize)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, secret, []byte(terminal)), nil
}
