package acquirer

import (
	"context"
	"crypto/cipher"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posagent/posagent/sync/signing"
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

// loadSecret reads and decrypts a terminal's sealed secret with query (one parameter: the
// terminal); an unknown terminal is signing.ErrUnknown.
func loadSecret(ctx context.Context, q querier, query string, aead cipher.AEAD, terminal string) ([]byte, error) {
	var sealed []byte
	err := q.QueryRowContext(ctx, query, terminal).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, signing.ErrUnknown
	}
	if err != nil {
		return nil, fmt.Errorf("look up terminal: %w", err)
	}
	return unsealSecret(aead, terminal, sealed)
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

// setOrderTx changes an order's state inside tx: selectQuery reads its body (one
// parameter: the reference), updateQuery writes it back (body, reference).
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
	o.State, o.Scheme = state, scheme
	if state == "paid" {
		o.PaidAt = at.UTC()
	}
	b, _ := json.Marshal(o)
	_, err := tx.ExecContext(ctx, updateQuery, string(b), reference)
	return err
}
