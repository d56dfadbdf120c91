package acquirer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrDSN is a --db that names no store Open can open (a usage error).
var ErrDSN = errors.New("bad store name")

// dsnError is a usage error about the store's name: ErrDSN with its message.
type dsnError struct{ msg string }

func (e dsnError) Error() string        { return e.msg }
func (e dsnError) Is(target error) bool { return target == ErrDSN }

// Open opens the store named by dsn, as acquirerd does: sqlite:PATH (the master key
// defaults to PATH.key), or a PostgreSQL URL or key=value connection string (keyFile
// required). The master key file is created with mode 0600 when missing (MasterKey).
// A malformed dsn is an error wrapping ErrDSN.
func Open(ctx context.Context, dsn, keyFile string) (Store, error) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		if !IsPostgresDSN(dsn) {
			return nil, dsnError{fmt.Sprintf("--db %s must be sqlite:PATH or postgres://USER@HOST/DB", RedactDSN(dsn))}
		}
		if keyFile == "" {
			return nil, dsnError{"--db postgres://… needs --master-key-file (or ACQUIRERD_MASTER_KEY_FILE): the same file on every node"}
		}
		key, err := MasterKey(keyFile)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return OpenPostgres(ctx, dsn, key)
	}
	if err := checkSQLitePath(path); err != nil {
		return nil, err
	}
	if keyFile == "" {
		keyFile = path + ".key"
	}
	key, err := MasterKey(keyFile)
	if err != nil {
		return nil, err
	}
	return OpenSQLite(path, key)
}

// sqliteMagic opens every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkSQLitePath refuses, before anything is written, an empty path, a directory and a
// file that is not a SQLite database. A missing or empty file is a new store.
func checkSQLitePath(path string) error {
	if path == "" {
		return dsnError{"--db sqlite: needs a path, e.g. sqlite:/var/lib/acquirerd/acquirer.db"}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open acquirer store: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("--db sqlite:%s is a directory, not a database file", path)
	}
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if string(head[:n]) != sqliteMagic {
		return fmt.Errorf("--db sqlite:%s is not a SQLite database (nothing was written to it): check the path", path)
	}
	return nil
}

// MasterKey reads the 32-byte key (64 hex digits) at path, creating it with mode 0600 if it
// does not exist. A key readable by group or others is refused.
func MasterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create master key: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create master key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("master key %s must hold 64 hex digits", path)
	}
	return key, nil
}

// IsPostgresDSN reports whether dsn names a PostgreSQL database: a postgres:// URL or a libpq
// key=value connection string.
func IsPostgresDSN(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return true
	}
	for _, kv := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return false
		}
	}
	return strings.Contains(dsn, "=") && (strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname="))
}

// RedactDSN hides a password in a URL for error messages.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(a connection string with a password)"
	}
	return fmt.Sprintf("%q", dsn)
}
