// Package sqlstmt reuses prepared statements within one database/sql transaction.
package sqlstmt

import (
	"context"
	"database/sql"
)

// Cache runs a transaction's queries through statements prepared once per distinct
// query and reused for the rest of the transaction: a batch runs the same few queries for
// each of its records, and preparing them again for each one cost a third of the batch's
// time in the store (go tool pprof: sqlite3_prepare_v2). Close it before the
// transaction ends.
type Cache struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// New returns a cache for the statements of tx.
func New(tx *sql.Tx) *Cache { return &Cache{tx: tx, stmts: map[string]*sql.Stmt{}} }

func (c *Cache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

// QueryRowContext is sql.Tx's, through a prepared statement.
func (c *Cache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...) // reports the same error on Scan
	}
	return st.QueryRowContext(ctx, args...)
}

// QueryContext is sql.Tx's, through a prepared statement.
func (c *Cache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// ExecContext is sql.Tx's, through a prepared statement.
func (c *Cache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Close closes the prepared statements.
func (c *Cache) Close() {
	for _, st := range c.stmts {
		st.Close()
	}
}
