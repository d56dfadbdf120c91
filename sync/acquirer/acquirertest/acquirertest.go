// Package acquirertest holds test helpers for the acquirer endpoint: a private PostgreSQL
// schema per test, and a throwaway PKI for TLS and mTLS tests.
package acquirertest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Environment variables of the PostgreSQL tests.
const (
	// EnvDSN names the database the PostgreSQL tests use (each test in a schema of its
	// own, dropped at the end), e.g. postgres://postgres@127.0.0.1:5432/posagent_test.
	EnvDSN = "POSAGENT_PG_DSN"
	// EnvRequire, set to 1 with CI=true, turns a missing EnvDSN from a skip into a failure.
	EnvRequire = "POSAGENT_REQUIRE_PG"
)

// PostgresDSN returns a connection string for a new, empty schema in the database named by
// $POSAGENT_PG_DSN (it becomes the search_path, so the store's tables land there); the
// schema is dropped when the test ends. Without $POSAGENT_PG_DSN the test is skipped, or
// fails when CI=true and POSAGENT_REQUIRE_PG=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvDSN)
	if base == "" {
		if os.Getenv("CI") == "true" && os.Getenv(EnvRequire) == "1" {
			t.Fatalf("%s is not set, and CI=true %s=1 require the PostgreSQL tests: .ci/run starts a cluster and sets it", EnvDSN, EnvRequire)
		}
		t.Skipf("PostgreSQL store not tested: set %s (e.g. postgres://postgres@127.0.0.1:5432/posagent_test) to run it", EnvDSN)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("create a schema in %s: %v", EnvDSN, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	return WithSearchPath(base, schema)
}

// WithSearchPath returns dsn (a URL or key=value string) with search_path set to schema.
func WithSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
