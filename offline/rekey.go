package offline

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
)

// ErrUnsent: the journal holds records the acquirer has not acknowledged, so it cannot be
// moved to a new key yet (the acquirer checks each record's MAC and credential tag with
// the key it was written under). Upload them first.
var ErrUnsent = errors.New("records not yet at the acquirer")

// metaRetiredTags is the meta key naming the last sequence whose credential tag was made
// with a key the journal no longer holds (see Rekey).
const metaRetiredTags = "tags_retired_through"

// UnsentError is ErrUnsent with the count.
type UnsentError struct{ Records int }

func (e *UnsentError) Error() string {
	return fmt.Sprintf("%d records are not yet at the acquirer", e.Records)
}

// Unwrap returns ErrUnsent.
func (e *UnsentError) Unwrap() error { return ErrUnsent }

// Rekey moves the journal from the key it was opened with to next, the secret a rotation
// (acquirerd terminals rotate) gave the terminal, in one transaction: every record's
// HMAC is remade with next and every stored credential is decrypted and sealed again
// under next. The records' hashes do not change (the acquirer holds them and the chain
// goes on from them), so the credential tags the hashes commit to stay those of the old
// key; Verify then checks those credentials by their authenticated encryption under
// next instead of by their tag, for the sequences up to the rekey point.
//
// Rekey refuses with an *UnsentError (ErrUnsent) while any record is not acknowledged by
// the acquirer: such a record still has to be uploaded, and the acquirer verifies it with
// the key it was written under (the old one is accepted during the rotation's grace).
// A journal already under next is left as it is (nil), so a provisioning interrupted
// after the journal moved and before the key file was replaced can be run again. After
// Rekey the journal must be reopened with next.
func (j *Journal) Rekey(ctx context.Context, next *Key) error {
	old := j.opts.Key
	if old == nil || next == nil {
		return fmt.Errorf("rekey journal: %w", ErrNoKey)
	}
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return classify("rekey journal", err)
	}
	defer tx.Rollback()
	var unsent int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sales WHERE acked_at IS NULL`).Scan(&unsent); err != nil {
		return classify("rekey journal", err)
	}
	var total int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sales`).Scan(&total); err != nil {
		return classify("rekey journal", err)
	}
	if total == 0 {
		return nil // nothing is under the old key
	}
	if already, err := macsMatch(ctx, tx, next); err != nil {
		return classify("rekey journal", err)
	} else if already {
		return nil
	}
	if unsent > 0 {
		return fmt.Errorf("rekey journal: %w", &UnsentError{Records: unsent})
	}
	if wrong, err := noMACMatches(ctx, tx, old); err != nil {
		return classify("rekey journal", err)
	} else if wrong {
		return fmt.Errorf("rekey journal: %w: the current key authenticates none of its records", ErrWrongKey)
	}

	type row struct {
		seq          uint64
		id           string
		sealed, hash []byte
	}
	var recs []row
	rows, err := tx.QueryContext(ctx, `SELECT seq, id, credential, hash FROM sales ORDER BY seq`)
	if err != nil {
		return classify("rekey journal", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.id, &r.sealed, &r.hash); err != nil {
			rows.Close()
			return classify("rekey journal", err)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return classify("rekey journal", err)
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE sales SET credential = ?, mac = ? WHERE seq = ?`)
	if err != nil {
		return classify("rekey journal", err)
	}
	defer upd.Close()
	var last uint64
	for _, r := range recs {
		sealed := r.sealed
		if sealed != nil {
			pt, err := old.open(r.id, sealed)
			if err != nil {
				return fmt.Errorf("rekey journal: sequence %d: %w", r.seq, err)
			}
			sealed, err = next.seal(r.id, pt)
			clear(pt)
			if err != nil {
				return fmt.Errorf("rekey journal: sequence %d: %w", r.seq, err)
			}
		}
		if _, err := upd.ExecContext(ctx, sealed, next.RecordMAC(r.hash), r.seq); err != nil {
			return classify("rekey journal", err)
		}
		last = r.seq
	}
	if last > 0 {
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
			metaRetiredTags, strconv.FormatUint(last, 10)); err != nil {
			return classify("rekey journal", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return classify("rekey journal", err)
	}
	return nil
}

// macsMatch reports whether the journal has records and key authenticates every one.
func macsMatch(ctx context.Context, tx *sql.Tx, key *Key) (bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT hash, mac FROM sales ORDER BY seq`)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var hash, mac []byte
		if err := rows.Scan(&hash, &mac); err != nil {
			return false, err
		}
		if !bytes.Equal(key.RecordMAC(hash), mac) {
			return false, nil
		}
		n++
	}
	return n > 0, rows.Err()
}
