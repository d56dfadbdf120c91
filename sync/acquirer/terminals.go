package acquirer

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/sync/signing"
)

// ErrRevoked means the terminal was revoked (acquirerd terminals revoke): every request it
// signs is refused. It wraps signing.ErrUnknown, so that code treating it as an unknown
// terminal stays right.
var ErrRevoked = errors.New("terminal revoked")

// revokedError is ErrRevoked with the time of the revocation; it is also signing.ErrUnknown.
type revokedError struct{ at time.Time }

func (e revokedError) Error() string {
	return "terminal revoked at " + e.at.UTC().Format(time.RFC3339)
}

func (e revokedError) Is(target error) bool {
	return target == ErrRevoked || target == signing.ErrUnknown
}

// TerminalInfo is one registered terminal as the administrator sees it (never its secret).
type TerminalInfo struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	// GraceUntil is when the secret replaced by the last rotation stops being accepted;
	// zero when none is.
	GraceUntil time.Time `json:"grace_until,omitzero"`
	// RevokedAt is when the terminal was revoked; zero when it is not.
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// TerminalAdmin is what acquirerd's terminals commands need beyond Store: both stores
// implement it.
type TerminalAdmin interface {
	// ListTerminals returns the registered terminals in order of id.
	ListTerminals(ctx context.Context) ([]TerminalInfo, error)
	// RotateTerminal replaces the terminal's secret with secret; the one it replaces is
	// still accepted for requests until grace has passed. ErrNotFound for an unknown
	// terminal, ErrRevoked for a revoked one.
	RotateTerminal(ctx context.Context, terminal string, secret []byte, grace time.Duration) error
	// RevokeTerminal refuses every request of the terminal from now on (its secrets are
	// kept, so that its ledger stays verifiable). ErrNotFound for an unknown terminal.
	RevokeTerminal(ctx context.Context, terminal string) error
}

var (
	_ TerminalAdmin = (*SQLite)(nil)
	_ TerminalAdmin = (*Postgres)(nil)
)

// terminalRow is a terminals row as the secret lookups need it.
type terminalRow struct {
	secret, prev []byte
	prevUntil    int64 // Unix ms
	revokedAt    int64 // Unix ms; 0: not revoked
}

func readTerminal(ctx context.Context, q querier, d dialect, terminal string) (terminalRow, error) {
	var r terminalRow
	err := q.QueryRowContext(ctx, d.q(`SELECT secret, prev_secret, prev_until, revoked_at FROM terminals WHERE id = ?`), terminal).
		Scan(&r.secret, &r.prev, &r.prevUntil, &r.revokedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return r, signing.ErrUnknown
	}
	if err != nil {
		return r, fmt.Errorf("look up terminal: %w", err)
	}
	if r.revokedAt != 0 {
		return r, revokedError{time.UnixMilli(r.revokedAt)}
	}
	return r, nil
}

// currentSecret is ProvisionedSecret for both stores: a revoked terminal is ErrRevoked.
func currentSecret(ctx context.Context, q querier, d dialect, aead cipher.AEAD, terminal string) ([]byte, error) {
	r, err := readTerminal(ctx, q, d, terminal)
	if err != nil {
		return nil, err
	}
	return unsealSecret(aead, terminal, r.secret)
}

// previousSigningKey is signing.PreviousKeys for both stores: the signing key of the secret
// the last rotation replaced, while its grace lasts; signing.ErrUnknown otherwise.
func previousSigningKey(ctx context.Context, q querier, d dialect, aead cipher.AEAD, now time.Time, terminal string) ([]byte, error) {
	secret, err := retiredSecret(ctx, q, d, aead, now, terminal)
	if err != nil {
		return nil, err
	}
	return signingKeyOf(terminal, secret)
}

// chainSecrets is ChainSecrets for both stores, from one read of the terminal's row: the
// current secret, and the one the last rotation replaced while its grace lasts (nil
// otherwise). A revoked terminal is ErrRevoked.
func chainSecrets(ctx context.Context, q querier, d dialect, aead cipher.AEAD, now time.Time, terminal string) (current, retired []byte, err error) {
	r, err := readTerminal(ctx, q, d, terminal)
	if err != nil {
		return nil, nil, err
	}
	if current, err = unsealSecret(aead, terminal, r.secret); err != nil {
		return nil, nil, err
	}
	if len(r.prev) == 0 || now.UnixMilli() >= r.prevUntil {
		return current, nil, nil
	}
	if retired, err = unsealSecret(aead, terminal, r.prev); err != nil {
		clear(current)
		return nil, nil, err
	}
	return current, retired, nil
}

// retiredSecret is the retired secret for both stores: the secret the last rotation replaced,
// while its grace lasts; signing.ErrUnknown otherwise.
func retiredSecret(ctx context.Context, q querier, d dialect, aead cipher.AEAD, now time.Time, terminal string) ([]byte, error) {
	r, err := readTerminal(ctx, q, d, terminal)
	if err != nil {
		return nil, err
	}
	if len(r.prev) == 0 || now.UnixMilli() >= r.prevUntil {
		return nil, signing.ErrUnknown
	}
	return unsealSecret(aead, terminal, r.prev)
}

type execQuerier interface {
	querier
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func listTerminals(ctx context.Context, db execQuerier) ([]TerminalInfo, error) {
	rows, err := db.QueryContext(ctx, `SELECT id, created_at, prev_until, revoked_at FROM terminals ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []TerminalInfo{}
	for rows.Next() {
		var (
			t                TerminalInfo
			created          any
			until, revokedAt int64
		)
		if err := rows.Scan(&t.ID, &created, &until, &revokedAt); err != nil {
			return nil, err
		}
		switch c := created.(type) {
		case time.Time:
			t.CreatedAt = c.UTC()
		case string:
			t.CreatedAt, _ = time.Parse(time.RFC3339, c)
		case []byte:
			t.CreatedAt, _ = time.Parse(time.RFC3339, string(c))
		}
		if until != 0 {
			t.GraceUntil = time.UnixMilli(until).UTC()
		}
		if revokedAt != 0 {
			t.RevokedAt = time.UnixMilli(revokedAt).UTC()
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func rotateTerminal(ctx context.Context, db execQuerier, d dialect, aead cipher.AEAD, now time.Time, terminal string, secret []byte, grace time.Duration) error {
	r, err := readTerminal(ctx, db, d, terminal)
	if errors.Is(err, ErrRevoked) {
		return fmt.Errorf("terminal %s: %w", terminal, err)
	}
	if errors.Is(err, signing.ErrUnknown) {
		return fmt.Errorf("terminal %s: %w", terminal, ErrNotFound)
	}
	if err != nil {
		return err
	}
	sealed, err := sealSecret(aead, terminal, secret)
	if err != nil {
		return err
	}
	// Compare-and-set on the secret read, so that two rotations at once cannot lose one.
	res, err := db.ExecContext(ctx, d.q(`UPDATE terminals SET prev_secret = secret, prev_until = ?, secret = ? WHERE id = ? AND secret = ?`),
		now.Add(grace).UnixMilli(), sealed, terminal, r.secret)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("terminal %s: rotated by someone else meanwhile: %w", terminal, ErrConflict)
	}
	return nil
}

func revokeTerminal(ctx context.Context, db execQuerier, d dialect, now time.Time, terminal string) error {
	res, err := db.ExecContext(ctx, d.q(`UPDATE terminals SET revoked_at = ? WHERE id = ? AND revoked_at = 0`), now.UnixMilli(), terminal)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	if _, err := readTerminal(ctx, db, d, terminal); errors.Is(err, signing.ErrUnknown) && !errors.Is(err, ErrRevoked) {
		return fmt.Errorf("terminal %s: %w", terminal, ErrNotFound)
	}
	return nil // revoked already
}

// ListTerminals implements TerminalAdmin.
func (s *SQLite) ListTerminals(ctx context.Context) ([]TerminalInfo, error) {
	return listTerminals(ctx, s.db)
}

// RotateTerminal implements TerminalAdmin.
func (s *SQLite) RotateTerminal(ctx context.Context, terminal string, secret []byte, grace time.Duration) error {
	return rotateTerminal(ctx, s.db, sqliteSQL, s.aead, s.now(), terminal, secret, grace)
}

// RevokeTerminal implements TerminalAdmin.
func (s *SQLite) RevokeTerminal(ctx context.Context, terminal string) error {
	return revokeTerminal(ctx, s.db, sqliteSQL, s.now(), terminal)
}

// ChainSecrets returns the terminal's secret and the one the last rotation replaced while
// its grace lasts (nil otherwise): records journaled under either are accepted.
func (s *SQLite) ChainSecrets(ctx context.Context, terminal string) (current, retired []byte, err error) {
	return chainSecrets(ctx, s.db, sqliteSQL, s.aead, s.now(), terminal)
}

// PreviousSecret implements signing.PreviousKeys.
func (s *SQLite) PreviousSecret(ctx context.Context, terminal string) ([]byte, error) {
	return previousSigningKey(ctx, s.db, sqliteSQL, s.aead, s.now(), terminal)
}

// ListTerminals implements TerminalAdmin.
func (s *Postgres) ListTerminals(ctx context.Context) ([]TerminalInfo, error) {
	return listTerminals(ctx, s.db)
}

// RotateTerminal implements TerminalAdmin.
func (s *Postgres) RotateTerminal(ctx context.Context, terminal string, secret []byte, grace time.Duration) error {
	return rotateTerminal(ctx, s.db, postgresSQL, s.aead, s.now(), terminal, secret, grace)
}

// RevokeTerminal implements TerminalAdmin.
func (s *Postgres) RevokeTerminal(ctx context.Context, terminal string) error {
	return revokeTerminal(ctx, s.db, postgresSQL, s.now(), terminal)
}

// ChainSecrets returns the terminal's secret and the one the last rotation replaced while
// its grace lasts (nil otherwise): records journaled under either are accepted.
func (s *Postgres) ChainSecrets(ctx context.Context, terminal string) (current, retired []byte, err error) {
	return chainSecrets(ctx, s.db, postgresSQL, s.aead, s.now(), terminal)
}

// PreviousSecret implements signing.PreviousKeys.
func (s *Postgres) PreviousSecret(ctx context.Context, terminal string) ([]byte, error) {
	return previousSigningKey(ctx, s.db, postgresSQL, s.aead, s.now(), terminal)
}
