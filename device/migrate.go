package device

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	_ "github.com/mattn/go-sqlite3" // the old payment store, read once

	"github.com/posagent/posagent/offline"
)

// migratePaymentStore moves the payments of the payment store that earlier versions kept
// beside the journal (payments.db) into the journal, which is now the one ledger, and
// renames the old file to payments.db.migrated (with its WAL) so it is never read again.
// A payment already in the journal is left as the journal has it. Nothing happens when
// there is no old file.
func migratePaymentStore(ctx context.Context, j *offline.Journal, path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT data FROM payments ORDER BY rowid`)
	if err != nil {
		return 0, fmt.Errorf("migrate %s: %w", path, err)
	}
	var old []*Payment
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			rows.Close()
			return 0, fmt.Errorf("migrate %s: %w", path, err)
		}
		row := offline.PaymentRow{Data: []byte(data)}
		var p Payment
		if err := jsonUnmarshal(row.Data, &p); err != nil {
			rows.Close()
			return 0, fmt.Errorf("migrate %s: %w", path, err)
		}
		old = append(old, &p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("migrate %s: %w", path, err)
	}
	n := 0
	for _, p := range old {
		if _, err := j.PaymentByKey(ctx, p.IdempotencyKey); err == nil {
			continue
		}
		core := coreOf(p)
		if err := j.CreatePayment(ctx, p.row(core)); err != nil && !errors.Is(err, offline.ErrPaymentExists) {
			return n, fmt.Errorf("migrate payment %s: %w", p.ID, err)
		}
		n++
	}
	db.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(path+suffix, path+".migrated"+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("migrate %s: %w", path, err)
		}
	}
	return n, nil
}
