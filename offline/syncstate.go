package offline

import (
	"context"
	"database/sql"
	"errors"
)

// SyncState returns what the uplink stored under key (SetSyncState), or "" when nothing
// is stored.
func (j *Journal) SyncState(ctx context.Context, key string) (string, error) {
	var v string
	err := j.r.QueryRowContext(ctx, `SELECT value FROM sync_state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, classify("read sync state", err)
}

// SetSyncState durably stores value under key for the uplink (the results feed's cursor):
// when it returns, the value is on disk.
func (j *Journal) SetSyncState(ctx context.Context, key, value string) error {
	_, err := j.w.ExecContext(ctx, `INSERT INTO sync_state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return classify("write sync state", err)
}
