package offline

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/mattn/go-sqlite3"
)

// Sentinel errors that callers (the agent, the uplink, the CLI) branch on with errors.Is.
// Each comes wrapped in an error whose message a cashier or a technician can read.
var (
	// ErrPolicy: the offline risk policy refuses the sale. See *Refusal.
	ErrPolicy = errors.New("refused by the offline policy")

	// ErrDiskFull: the journal's file system (or its configured size cap) is full. The sale
	// was not stored and nothing stored before was harmed; it works again when space returns.
	ErrDiskFull = errors.New("journal disk full")

	// ErrReadOnly: the journal's file system is read-only (often a failing flash that the
	// kernel remounted read-only). The sale was not stored.
	ErrReadOnly = errors.New("journal read-only")

	// ErrCorrupt: the database file is damaged. At Open the file is moved aside and
	// offline sales are suspended until a technician releases the journal.
	ErrCorrupt = errors.New("journal corrupt")

	// ErrNotJournal: a file opened read-only is not a journal (not a SQLite database, or a
	// SQLite database without the journal's schema). Nothing was changed. A read-write Open
	// treats such a file as damaged (ErrCorrupt) and moves it aside.
	ErrNotJournal = errors.New("not a posagent journal")

	// ErrWrongKey: the key authenticates none of the journal's records: another terminal's
	// key, or another terminal's journal. Not damage.
	ErrWrongKey = errors.New("the key does not match the journal")

	// ErrHeld: offline sales are suspended until a technician acts (see Journal.Hold).
	ErrHeld = errors.New("offline sales suspended")

	// ErrConflict: an idempotency key was reused for a different sale.
	ErrConflict = errors.New("idempotency key reused")

	// ErrNotFound: no record with that id or key.
	ErrNotFound = errors.New("not found")

	// ErrNoKey: the journal was opened without a key and the operation needs one.
	ErrNoKey = errors.New("no journal key")

	// ErrClosed: the journal is closed.
	ErrClosed = errors.New("journal closed")
)

// StoreError is a failure to write to the journal, with a message for the counter.
type StoreError struct {
	Kind error // ErrDiskFull, ErrReadOnly, ErrCorrupt, or nil for anything else
	Op   string
	Err  error
}

func (e *StoreError) Error() string {
	lost := ""
	if e.Op == "store sale" {
		lost = ", the sale was not stored"
	}
	switch e.Kind {
	case ErrDiskFull:
		return e.Op + ": the journal's storage is full" + lost + " (free space or call a technician)"
	case ErrReadOnly:
		return e.Op + ": the journal's storage is read-only" + lost + " (call a technician)"
	case ErrCorrupt:
		return e.Op + ": the journal database is damaged" + lost + " (call a technician): " + e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

// Unwrap returns the kind and the underlying error.
func (e *StoreError) Unwrap() []error {
	if e.Kind == nil {
		return []error{e.Err}
	}
	return []error{e.Kind, e.Err}
}

// classify maps SQLite's result codes to our sentinels: SQLITE_FULL (and ENOSPC surfacing as
// an I/O error on write or fsync) is disk full, SQLITE_READONLY and EROFS are read-only,
// SQLITE_CORRUPT and SQLITE_NOTADB are corruption. Anything else is passed on as it is.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *StoreError
	if errors.As(err, &se) {
		return err
	}
	var sq sqlite3.Error
	if !errors.As(err, &sq) {
		return fmt.Errorf("%s: %w", op, err)
	}
	kind := error(nil)
	switch sq.Code {
	case sqlite3.ErrFull:
		kind = ErrDiskFull
	case sqlite3.ErrReadonly:
		kind = ErrReadOnly
	case sqlite3.ErrCorrupt, sqlite3.ErrNotADB:
		kind = ErrCorrupt
	case sqlite3.ErrIoErr, sqlite3.ErrCantOpen:
		switch sq.SystemErrno {
		case syscall.ENOSPC, syscall.EDQUOT:
			kind = ErrDiskFull
		case syscall.EROFS:
			kind = ErrReadOnly
		}
	}
	return &StoreError{Kind: kind, Op: op, Err: err}
}

// onReadOnlyFS refines err for the journal at path: SQLite reports a read-only file system
// in several ways (SQLITE_READONLY, SQLITE_CANTOPEN for a -wal it cannot create, I/O
// errors), so when a write fails for a reason it did not name, ask the kernel.
func onReadOnlyFS(path string, err error) error {
	var se *StoreError
	if !errors.As(err, &se) || se.Kind != nil {
		return err
	}
	if syscall.Access(filepath.Dir(path), 2 /* W_OK */) == syscall.EROFS {
		se.Kind = ErrReadOnly
	}
	return err
}
