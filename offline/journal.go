// Package offline is the terminal's ledger: a store-and-forward journal of sales in one
// SQLite file (github.com/mattn/go-sqlite3, so cgo).
//
// Every sale is journaled before anything else happens to it, online or offline, and must
// survive a crash, a kill -9 or a power cut and reach the acquirer exactly once. The
// choices that follow from that:
//
//   - WAL with synchronous=FULL: a commit returns only after the WAL is fsynced, so an
//     acknowledged sale is on disk; readers never block the writer.
//   - One writer connection and BEGIN IMMEDIATE: the write lock is taken when the
//     transaction starts, so two appends never race for the sequence or the chain head,
//     and a busy database shows up at BEGIN (where retrying is safe), not at COMMIT.
//   - The sequence number comes from a counter row updated in the same transaction as the
//     insert: a rolled-back insert (disk full, crash) takes its number with it, so the
//     sequence has no gaps.
//   - Each record carries prev_hash and hash (SHA-256 over its canonical encoding, see
//     Entry, and the previous hash) and an HMAC of the hash under a key derived from the
//     provisioned secret, so the acquirer can prove that nothing was removed or changed.
//     Purging old records keeps the last purged hash as an anchor, so the chain still
//     verifies.
//   - Credentials are encrypted with AES-256-GCM, bound to their record id, and only ever
//     shown masked.
//   - Migrations are embedded and applied once each (PRAGMA user_version, in the same
//     transaction as the migration). PRAGMA quick_check runs at every Open; a damaged file
//     is moved aside, never overwritten, and offline sales stop until a technician acts.
//   - The file stays bounded: incremental auto-vacuum after purges, WAL checkpoints, and a
//     journal_size_limit that truncates the WAL after a checkpoint; Options.MaxSize caps it.
package offline

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/mattn/go-sqlite3"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DefaultRetention is how long acknowledged records are kept when Options.Retention is 0.
const DefaultRetention = 30 * 24 * time.Hour

// Options configure a Journal. The zero value opens a journal for reading and writing with
// no key (so no Append), no offline allowance and the default retention.
type Options struct {
	// Key encrypts credentials and authenticates the chain. Without it the journal can be
	// read and its hash chain verified, but not appended to, and HMACs are not checked.
	Key *Key
	// Terminal is this terminal's id, recorded in every entry. A journal belongs to one
	// terminal: opening it with another id is an error. Empty takes the stored id.
	Terminal string
	// Policy decides what may be accepted offline.
	Policy Policy
	// Retention is how long acknowledged records in a final state are kept before Purge
	// removes them (DefaultRetention when 0).
	Retention time.Duration
	// MaxSize caps the database file, in bytes (PRAGMA max_page_count): a journal that
	// reaches it refuses new sales with ErrDiskFull instead of filling the flash that the
	// rest of the terminal needs. 0 means no cap but the file system's.
	MaxSize int64
	// ReadOnly opens an existing journal for reading (the CLI): no file is created, no
	// migration runs, nothing is written, and a damaged file is reported, not moved.
	ReadOnly bool
	// Readers is the size of the read pool (default 4).
	Readers int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Journal is an open journal. Its methods are safe for concurrent use.
type Journal struct {
	path     string
	opts     Options
	w        *sql.DB // the one writer connection
	r        *sql.DB // the read pool
	id       string  // this journal file's id
	terminal string
	now      func() time.Time

	mu     sync.Mutex
	hold   string // why offline sales are suspended; "" when they are not
	rebase string // why the journal must learn where the acquirer's chain ends; "" when not
}

// CorruptError reports a damaged journal found at Open: where it was moved and what SQLite
// said. errors.Is(err, ErrCorrupt) holds.
//
// A read-write Open moves the file (and its -wal and -shm) aside to MovedTo, never
// overwriting anything, and creates a fresh journal whose offline sales are held until a
// technician calls Release (posagent queue release). Opening again succeeds on the fresh
// journal, so online sales go on being journaled meanwhile.
type CorruptError struct {
	Path    string
	MovedTo string // empty for a ReadOnly open, which moves nothing
	Detail  string
}

func (e *CorruptError) Error() string {
	if e.MovedTo == "" {
		return fmt.Sprintf("journal %s is damaged: %s", e.Path, e.Detail)
	}
	return fmt.Sprintf("journal %s is damaged (%s); it was moved to %s and offline sales are suspended until a technician checks it", e.Path, e.Detail, e.MovedTo)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Open opens the journal at path, creating it unless opts.ReadOnly. It applies pending
// migrations and runs PRAGMA quick_check; a damaged file gives a *CorruptError (see there).
func Open(path string, opts Options) (*Journal, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention == 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Readers <= 0 {
		opts.Readers = 4
	}
	if opts.ReadOnly {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open journal: %w", err)
		}
		if err := checkHeader(path); err != nil {
			return nil, err
		}
	}
	j, detail, err := open(path, opts)
	if err == nil {
		return j, nil
	}
	if detail == "" {
		return nil, err
	}
	ce := &CorruptError{Path: path, Detail: detail}
	if opts.ReadOnly {
		return nil, ce
	}
	moved, merr := moveAside(path, opts.Now())
	if merr != nil {
		return nil, fmt.Errorf("%w (and moving it aside failed: %v)", ce, merr)
	}
	ce.MovedTo = moved
	fresh, _, err := open(path, opts)
	if err != nil {
		return nil, fmt.Errorf("%w (and creating a fresh journal failed: %v)", ce, err)
	}
	reason := fmt.Sprintf("the journal was found damaged on %s (%s) and moved to %s", opts.Now().UTC().Format(time.RFC3339), detail, moved)
	err = fresh.setHold(context.Background(), reason)
	if err == nil {
		// The acquirer may hold records of the damaged journal: the fresh one must start
		// after them (Rebase) before its first record, or its sequence would collide.
		_, err = fresh.w.ExecContext(context.Background(), `INSERT INTO meta (key, value) VALUES ('rebase', ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, reason)
	}
	fresh.Close()
	if err != nil {
		return nil, fmt.Errorf("%w (and holding offline sales failed: %v)", ce, err)
	}
	return nil, ce
}

// sqliteMagic opens every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkHeader gives ErrNotJournal for a non-empty file that is not a SQLite database, so
// that a read-only Open tells the wrong file from a damaged journal.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, _ := io.ReadFull(f, head)
	if n > 0 && string(head[:n]) != sqliteMagic {
		return fmt.Errorf("open journal: %s: %w (not a SQLite database)", path, ErrNotJournal)
	}
	return nil
}

// open opens and checks the file; a non-empty detail means it is damaged.
func open(path string, opts Options) (j *Journal, corrupt string, err error) {
	j = &Journal{path: path, opts: opts, now: opts.Now}
	base := "file:" + escapePath(path) + "?_busy_timeout=10000&mode="
	// Check a file that exists through a read-only connection first: closing a read-write
	// connection checkpoints and rewrites the header, and a damaged file is moved aside
	// exactly as it was found.
	if fi, err := os.Stat(path); err == nil && fi.Size() > 0 && !opts.ReadOnly {
		if detail := precheck(base + "ro"); detail != "" {
			return nil, detail, &CorruptError{Path: path, Detail: detail}
		}
	}
	mode := "rwc"
	if opts.ReadOnly {
		mode = "ro"
	} else if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
		// Created by us, 0600 (sales and encrypted credentials: the agent's alone); SQLite
		// gives the -wal and -shm files the main file's permissions.
		f.Close()
	}
	dsn := base + mode
	j.w = sql.OpenDB(&connector{dsn: dsn + "&_txlock=immediate", hook: j.writerHook})
	j.w.SetMaxOpenConns(1)
	j.w.SetMaxIdleConns(1)
	j.w.SetConnMaxLifetime(0)
	j.w.SetConnMaxIdleTime(0)
	ctx := context.Background()
	fail := func(op string, err error) (*Journal, string, error) {
		j.Close()
		err = onReadOnlyFS(path, classify(op, err))
		if errors.Is(err, ErrCorrupt) {
			return nil, sqliteMessage(err), err
		}
		return nil, "", err
	}
	if err := j.w.PingContext(ctx); err != nil {
		return fail("open journal", err)
	}
	if detail, err := j.quickCheck(ctx); err != nil {
		return fail("open journal: quick_check", err)
	} else if detail != "" {
		j.Close()
		return nil, detail, &CorruptError{Path: path, Detail: detail}
	}
	if err := j.migrate(ctx); err != nil {
		return fail("open journal: migrate", err)
	}
	if err := j.loadMeta(ctx); err != nil {
		return fail("open journal", err)
	}
	j.r = sql.OpenDB(&connector{dsn: dsn, hook: readerHook})
	j.r.SetMaxOpenConns(opts.Readers)
	j.r.SetMaxIdleConns(opts.Readers)
	return j, "", nil
}

func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

func sqliteMessage(err error) string {
	var sq sqlite3.Error
	if errors.As(err, &sq) {
		return sq.Error()
	}
	return err.Error()
}

// connector hands database/sql connections from a SQLite driver with a per-journal hook
// (the pragmas depend on the journal's options, so a global registered driver won't do).
type connector struct {
	dsn  string
	hook func(*sqlite3.SQLiteConn) error
}

func (c *connector) Connect(context.Context) (driver.Conn, error) {
	return c.Driver().Open(c.dsn)
}

func (c *connector) Driver() driver.Driver {
	return &sqlite3.SQLiteDriver{ConnectHook: c.hook}
}

// walSizeLimit is the size the WAL is truncated to after a checkpoint.
const walSizeLimit = 4 << 20

func (j *Journal) writerHook(c *sqlite3.SQLiteConn) error {
	pragmas := []string{
		"PRAGMA foreign_keys = ON",
		"PRAGMA synchronous = FULL",
		"PRAGMA journal_size_limit = " + strconv.Itoa(walSizeLimit),
	}
	if !j.opts.ReadOnly {
		// auto_vacuum only takes effect on a new file, so it comes before anything is
		// created; journal_mode=WAL is persistent once set.
		pragmas = append([]string{"PRAGMA auto_vacuum = INCREMENTAL", "PRAGMA journal_mode = WAL"}, pragmas...)
	} else {
		pragmas = append(pragmas, "PRAGMA query_only = ON")
	}
	if j.opts.MaxSize > 0 {
		// SQLite's default page size (4096 since 3.12) is what new journals get.
		pages := max(j.opts.MaxSize/4096, 16)
		pragmas = append(pragmas, "PRAGMA max_page_count = "+strconv.FormatInt(pages, 10))
	}
	for _, p := range pragmas {
		if _, err := c.Exec(p, nil); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func readerHook(c *sqlite3.SQLiteConn) error {
	for _, p := range []string{"PRAGMA query_only = ON", "PRAGMA foreign_keys = ON"} {
		if _, err := c.Exec(p, nil); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// precheck runs quick_check on a read-only connection and returns what is damaged, or ""
// when the file looks sound or could not be checked this way (the read-write open that
// follows checks again).
func precheck(dsn string) string {
	db := sql.OpenDB(&connector{dsn: dsn, hook: readerHook})
	defer db.Close()
	detail, err := check(context.Background(), db, "PRAGMA quick_check")
	if err != nil {
		if errors.Is(classify("", err), ErrCorrupt) {
			return sqliteMessage(err)
		}
		return ""
	}
	return detail
}

// quickCheck runs PRAGMA quick_check; it returns what is wrong, or "" when the file is fine.
func (j *Journal) quickCheck(ctx context.Context) (string, error) {
	return check(ctx, j.w, "PRAGMA quick_check")
}

func check(ctx context.Context, db *sql.DB, pragma string) (string, error) {
	rows, err := db.QueryContext(ctx, pragma)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var msgs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return "", err
		}
		if s != "ok" {
			msgs = append(msgs, s)
		}
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(msgs) > 3 {
		msgs = append(msgs[:3], fmt.Sprintf("and %d more problems", len(msgs)-3))
	}
	return strings.Join(msgs, "; "), nil
}

// moveAside renames the damaged file and its WAL and shared-memory files to
// <path>.corrupt-<UTC timestamp>[-N], never replacing an existing file.
func moveAside(p string, now time.Time) (string, error) {
	base := p + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	target := base
	for n := 2; ; n++ {
		if _, err := os.Lstat(target); errors.Is(err, fs.ErrNotExist) {
			break
		}
		target = fmt.Sprintf("%s-%d", base, n)
	}
	// The WAL and shm first: the main file moving last means a crash in between leaves
	// the damaged main file where it was, to be found damaged again.
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Lstat(p + suffix); err == nil {
			if err := moveNoReplace(p+suffix, target+suffix); err != nil {
				return "", err
			}
		}
	}
	if err := moveNoReplace(p, target); err != nil {
		return "", err
	}
	syncDir(path.Dir(p))
	return target, nil
}

// moveNoReplace renames from to to, failing rather than replacing an existing to: link
// then remove (link fails if the target exists, where rename would replace it), or, on a
// file system without hard links (vfat on an SD card), rename after checking.
func moveNoReplace(from, to string) error {
	err := os.Link(from, to)
	if err == nil {
		return os.Remove(from)
	}
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, serr := os.Lstat(to); !errors.Is(serr, fs.ErrNotExist) {
		return fmt.Errorf("move %s aside: %s exists", from, to)
	}
	return os.Rename(from, to)
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// migrations returns the embedded migrations in order; migration N sets user_version N.
func migrations() ([]string, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, n := range names {
		b, err := migrationFS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out[i] = string(b)
	}
	return out, nil
}

// migrate applies each pending migration in its own transaction, together with the
// user_version that records it, so each is applied exactly once even across a crash.
func (j *Journal) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	var version int
	if err := j.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("the journal's schema version %d is newer than this posagent knows (%d); use a newer posagent", version, len(ms))
	}
	if j.opts.ReadOnly {
		if version == 0 {
			return fmt.Errorf("%s: %w (a SQLite database without the journal's schema)", j.path, ErrNotJournal)
		}
		if version < len(ms) {
			return fmt.Errorf("the journal's schema version %d is older than this posagent's (%d); let the agent open it once to migrate it", version, len(ms))
		}
		return nil
	}
	for v := version; v < len(ms); v++ {
		tx, err := j.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, ms[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return nil
}

// loadMeta reads (creating on first open) the journal id and terminal id, and the hold.
func (j *Journal) loadMeta(ctx context.Context) error {
	meta := map[string]string{}
	rows, err := j.w.QueryContext(ctx, "SELECT key, value FROM meta")
	if err != nil {
		return err
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return err
		}
		meta[k] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	j.id, j.terminal, j.hold, j.rebase = meta["journal_id"], meta["terminal"], meta["hold"], meta["rebase"]
	if j.opts.Terminal != "" && j.id != "" && j.terminal != j.opts.Terminal {
		return fmt.Errorf("the journal belongs to terminal %q, not %q", j.terminal, j.opts.Terminal)
	}
	if j.id != "" || j.opts.ReadOnly {
		return nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	j.id, j.terminal = id.String(), j.opts.Terminal
	_, err = j.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('journal_id', ?), ('terminal', ?), ('created_at', ?)`,
		j.id, j.terminal, j.now().UTC().Format(time.RFC3339Nano))
	return err
}

// ID is the journal file's id (a UUIDv7 made when the file was created).
func (j *Journal) ID() string { return j.id }

// Terminal is the terminal the journal belongs to.
func (j *Journal) Terminal() string { return j.terminal }

// Path is the database file.
func (j *Journal) Path() string { return j.path }

// Hold returns why offline sales are suspended, or "" when they are not.
func (j *Journal) Hold() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.hold
}

func (j *Journal) setHold(ctx context.Context, reason string) error {
	_, err := j.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('hold', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, reason)
	if err != nil {
		return classify("hold journal", err)
	}
	j.mu.Lock()
	j.hold = reason
	j.mu.Unlock()
	return nil
}

// Release lifts a hold on offline sales: the technician has checked the damaged file
// moved aside (and recovered what it held). The note is kept in the journal's meta.
func (j *Journal) Release(ctx context.Context, note string) error {
	tx, err := j.w.BeginTx(ctx, nil)
	if err != nil {
		return classify("release journal", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = 'hold'`); err != nil {
		return classify("release journal", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('released', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		j.now().UTC().Format(time.RFC3339)+" "+note); err != nil {
		return classify("release journal", err)
	}
	if err := tx.Commit(); err != nil {
		return classify("release journal", err)
	}
	j.mu.Lock()
	j.hold = ""
	j.mu.Unlock()
	return nil
}

// Checkpoint copies the WAL into the database and truncates it, so the WAL stays small
// even when readers kept the automatic checkpoints from finishing.
func (j *Journal) Checkpoint(ctx context.Context) error {
	_, err := j.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	return classify("checkpoint journal", err)
}

// Close closes the journal. Appends that returned before Close are durable.
func (j *Journal) Close() error {
	var err error
	if j.r != nil {
		err = j.r.Close()
	}
	if j.w != nil {
		if werr := j.w.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// newID returns a UUIDv7: time-ordered, so ids sort roughly by capture time.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}
