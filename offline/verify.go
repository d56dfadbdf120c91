package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/posagent/posagent"
)

// Stats sums up the journal.
type Stats struct {
	JournalID   string
	Terminal    string
	Records     int                    // records in the file
	ByState     map[posagent.State]int // records by state
	Outstanding Outstanding            // offline and unsettled: what the policy weighs
	Overdue     int                    // outstanding records older than the policy's MaxAge
	Unacked     int                    // records the acquirer does not hold yet
	FirstSeq    uint64                 // lowest sequence in the file (0 when empty)
	LastSeq     uint64                 // last sequence assigned
	Anchor      *Anchor                // the last purged record, if any
	Hold        string                 // why offline sales are suspended, if they are
	FileBytes   int64                  // the database file
	WALBytes    int64                  // its write-ahead log
}

// Anchor is the last purged record: Verify starts from it.
type Anchor struct {
	Sequence uint64
	Hash     []byte
	PurgedAt time.Time
}

// Stats reads the journal's figures in one read transaction.
func (j *Journal) Stats(ctx context.Context) (Stats, error) {
	st := Stats{JournalID: j.id, Terminal: j.terminal, ByState: map[posagent.State]int{}, Hold: j.Hold()}
	tx, err := j.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, classify("journal stats", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT state, COUNT(*) FROM sales GROUP BY state`)
	if err != nil {
		return st, classify("journal stats", err)
	}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			rows.Close()
			return st, classify("journal stats", err)
		}
		st.ByState[posagent.State(s)] = n
		st.Records += n
	}
	rows.Close()
	if st.Outstanding, err = outstanding(ctx, tx); err != nil {
		return st, classify("journal stats", err)
	}
	var first sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq), (SELECT value FROM counter WHERE name = 'sequence'),
		(SELECT COUNT(*) FROM sales WHERE acked_at IS NULL) FROM sales`).Scan(&first, &st.LastSeq, &st.Unacked); err != nil {
		return st, classify("journal stats", err)
	}
	st.FirstSeq = uint64(first.Int64)
	if max := j.opts.Policy.MaxAge; max > 0 {
		cutoff := j.now().Add(-max).UnixMilli()
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sales WHERE state IN ('stored', 'uploading') AND captured_at < ?`,
			cutoff).Scan(&st.Overdue); err != nil {
			return st, classify("journal stats", err)
		}
	}
	if st.Anchor, err = anchor(ctx, tx); err != nil {
		return st, classify("journal stats", err)
	}
	if fi, err := os.Stat(j.path); err == nil {
		st.FileBytes = fi.Size()
	}
	if fi, err := os.Stat(j.path + "-wal"); err == nil {
		st.WALBytes = fi.Size()
	}
	return st, nil
}

func anchor(ctx context.Context, q querier) (*Anchor, error) {
	var a Anchor
	var at int64
	err := q.QueryRowContext(ctx, `SELECT seq, hash, purged_at FROM anchor WHERE id = 1`).Scan(&a.Sequence, &a.Hash, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.PurgedAt = time.UnixMilli(at).UTC()
	return &a, nil
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Records    int     // records walked
	FirstSeq   uint64  // the first one walked (0 when none)
	LastSeq    uint64  // the last one walked
	Anchor     *Anchor // where the walk started, when older records were purged
	MACChecked bool    // HMACs and credentials were checked (the journal has the key)
	Broken     *BrokenLink
}

// BrokenLink is the first place the chain does not hold.
type BrokenLink struct {
	Sequence uint64
	ID       string
	Reason   string
}

func (b *BrokenLink) Error() string {
	if b.ID == "" {
		return fmt.Sprintf("chain broken at sequence %d: %s", b.Sequence, b.Reason)
	}
	return fmt.Sprintf("chain broken at sequence %d (%s): %s", b.Sequence, b.ID, b.Reason)
}

// ErrChainBroken is the sentinel of a BrokenLink.
var ErrChainBroken = errors.New("journal chain broken")

// Unwrap returns ErrChainBroken.
func (b *BrokenLink) Unwrap() error { return ErrChainBroken }

// Verify walks the hash chain in sequence order from the purge anchor (or the genesis
// hash) and reports the first broken link: a gap in the sequence, a prev_hash that is not
// the previous record's hash, a hash that does not match the record's contents, the
// counter behind the last record, and, with the key, an HMAC that does not match or a
// credential that does not decrypt to its committed tag. It reads in one read
// transaction, so it sees one consistent state while the agent goes on writing.
func (j *Journal) Verify(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	key := j.opts.Key
	rep.MACChecked = key != nil
	tx, err := j.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return rep, classify("verify journal", err)
	}
	defer tx.Rollback()
	if rep.Anchor, err = anchor(ctx, tx); err != nil {
		return rep, classify("verify journal", err)
	}
	prevSeq, prevHash := uint64(0), GenesisHash
	if rep.Anchor != nil {
		prevSeq, prevHash = rep.Anchor.Sequence, rep.Anchor.Hash
	}
	var counter uint64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM counter WHERE name = 'sequence'`).Scan(&counter); err != nil {
		return rep, classify("verify journal", err)
	}
	// Records up to retired carry credential tags of a key a rotation replaced (Rekey):
	// their credentials are checked by decryption under the current key alone.
	var retired uint64
	var v string
	if err := tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, metaRetiredTags).Scan(&v); err == nil {
		if retired, err = strconv.ParseUint(v, 10, 64); err != nil {
			return rep, fmt.Errorf("verify journal: %w: meta %s is %q", ErrCorrupt, metaRetiredTags, v)
		}
	} else if !errors.Is(err, sql.ErrNoRows) {
		return rep, classify("verify journal", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, id, terminal, idempotency_key, reference, captured_at, amount, currency,
		method, scheme, credential, credential_tag, prev_hash, hash, mac, kind, parent FROM sales ORDER BY seq`)
	if err != nil {
		return rep, classify("verify journal", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e Entry
		var captured int64
		var sealed, prev, hash, mac []byte
		var method, scheme, kind string
		if err := rows.Scan(&e.Sequence, &e.ID, &e.Terminal, &e.IdempotencyKey, &e.Reference, &captured, &e.Amount,
			&e.Currency, &method, &scheme, &sealed, &e.CredentialTag, &prev, &hash, &mac, &kind, &e.Parent); err != nil {
			return rep, classify("verify journal", err)
		}
		e.Kind = posagent.Kind(kind)
		e.CapturedAt = time.UnixMilli(captured).UTC()
		e.Method, e.Scheme = posagent.Method(method), posagent.Scheme(scheme)
		if rep.Records == 0 {
			rep.FirstSeq = e.Sequence
		}
		rep.Records++
		rep.LastSeq = e.Sequence
		broken := func(format string, args ...any) (VerifyReport, error) {
			rep.Broken = &BrokenLink{Sequence: e.Sequence, ID: e.ID, Reason: fmt.Sprintf(format, args...)}
			return rep, nil
		}
		if e.Sequence != prevSeq+1 {
			return broken("sequence gap: expected %d after %d", prevSeq+1, prevSeq)
		}
		if !bytes.Equal(prev, prevHash) {
			return broken("prev_hash is not the hash of sequence %d", prevSeq)
		}
		canon, err := e.MarshalBinary()
		if err != nil {
			return broken("cannot encode: %v", err)
		}
		if !bytes.Equal(ChainHash(canon, prev), hash) {
			return broken("hash does not match the record's contents")
		}
		if key != nil {
			if !bytes.Equal(key.RecordMAC(hash), mac) {
				if rep.Records == 1 {
					if wrong, err := noMACMatches(ctx, tx, key); err != nil {
						return rep, classify("verify journal", err)
					} else if wrong {
						rep.Records, rep.FirstSeq, rep.LastSeq = 0, 0, 0
						return rep, fmt.Errorf("verify journal: %w: no record's HMAC matches it (another terminal's key or journal?)", ErrWrongKey)
					}
				}
				return broken("hmac does not match (altered record, or another terminal's key)")
			}
			if sealed != nil || e.CredentialTag != nil {
				pt, err := key.open(e.ID, sealed)
				if err != nil {
					return broken("%v", err)
				}
				ok := e.Sequence <= retired || bytes.Equal(key.CredentialTag(pt), e.CredentialTag)
				clear(pt)
				if !ok {
					return broken("credential does not match the one the chain commits to")
				}
			}
		}
		prevSeq, prevHash = e.Sequence, hash
	}
	if err := rows.Err(); err != nil {
		return rep, classify("verify journal", err)
	}
	if counter != prevSeq {
		rep.Broken = &BrokenLink{Sequence: prevSeq + 1, Reason: fmt.Sprintf("the sequence counter is at %d but the chain ends at %d (records missing at the end)", counter, prevSeq)}
	}
	return rep, nil
}

// IntegrityCheck runs SQLite's full PRAGMA integrity_check (slower than the quick_check
// run at every Open: it also checks indexes against tables). A problem gives an error
// wrapping ErrCorrupt that quotes SQLite's first findings.
func (j *Journal) IntegrityCheck(ctx context.Context) error {
	detail, err := check(ctx, j.r, "PRAGMA integrity_check")
	if err != nil {
		return classify("integrity check", err)
	}
	if detail != "" {
		return &StoreError{Kind: ErrCorrupt, Op: "integrity check", Err: errors.New(detail)}
	}
	return nil
}

// Purge removes acknowledged records in a final state whose last change and
// acknowledgement are older than the retention period, oldest first, and returns how many it removed. It only removes a
// prefix of the chain (it stops at the first record that must stay), and moves the anchor
// to the last record removed, in the same transaction, so the rest still verifies. Then
// it returns the freed pages to the file system and truncates the WAL.
func (j *Journal) Purge(ctx context.Context, now time.Time) (int, error) {
	cutoff := now.Add(-j.opts.Retention).UnixMilli()
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, classify("purge journal", err)
	}
	defer tx.Rollback()
	// The purgeable prefix ends just before the first record that is not purgeable.
	var stop sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MIN(seq) FROM sales WHERE acked_at IS NULL OR acked_at >= ?1 OR updated_at >= ?1
		OR state NOT IN ('approved', 'declined', 'canceled', 'failed')`, cutoff).Scan(&stop); err != nil {
		return 0, classify("purge journal", err)
	}
	stopSeq := int64(math.MaxInt64)
	if stop.Valid {
		stopSeq = stop.Int64
	}
	var last int64
	var hash []byte
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM sales WHERE seq < ? ORDER BY seq DESC LIMIT 1`, stopSeq).Scan(&last, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	} else if err != nil {
		return 0, classify("purge journal", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM sales WHERE seq <= ?`, last)
	if err != nil {
		return 0, classify("purge journal", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO anchor (id, seq, hash, purged_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, purged_at = excluded.purged_at`,
		last, hash, now.UTC().UnixMilli()); err != nil {
		return 0, classify("purge journal", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, classify("purge journal", err)
	}
	if _, err := j.w.ExecContext(ctx, "PRAGMA incremental_vacuum"); err != nil {
		return int(n), classify("purge journal: vacuum", err)
	}
	return int(n), j.Checkpoint(ctx)
}

// noMACMatches reports whether key authenticates none of the records: a wrong key, where an
// altered record leaves the others matching.
func noMACMatches(ctx context.Context, tx *sql.Tx, key *Key) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT hash, mac FROM sales ORDER BY seq`)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	for rows.Next() {
		var hash, mac []byte
		if err := rows.Scan(&hash, &mac); err != nil {
			return false, err
		}
		if bytes.Equal(key.RecordMAC(hash), mac) {
			return false, nil
		}
	}
	return true, rows.Err()
}
