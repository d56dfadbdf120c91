package acquirer

import (
	"database/sql"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/sync/acquirer/acquirertest"
	"github.com/posagent/posagent/sync/wire"
)

// v1Authorizations is the authorizations table as the first acquirerd created it.
const v1Authorizations = `CREATE TABLE authorizations (
	terminal        TEXT NOT NULL,
	idempotency_key TEXT NOT NULL,
	content         TEXT NOT NULL,
	response        TEXT NOT NULL,
	PRIMARY KEY (terminal, idempotency_key))`

// checkUpgraded: an authorization stored before the upgrade is found by its sale id,
// answers its retry, can be reversed, and new ones work beside it.
func checkUpgraded(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	st, err := s.AuthorizationStatus(ctx, "T1", "id-old")
	if err != nil || st.State != "approved" || st.AuthCode != "001250" {
		t.Fatalf("the old authorization's status: %+v %v", st, err)
	}
	resp, err := s.Authorize(ctx, "T1", authReq("old", 1250), func() Outcome { t.Fatal("decided again"); return Outcome{} })
	if err != nil || resp.Decision != wire.Approved {
		t.Fatalf("its retry: %+v %v", resp, err)
	}
	rev, err := s.Reverse(ctx, "T1", reversalOf(authReq("old", 1250)))
	if err != nil || rev.Previous != "approved" {
		t.Fatalf("its reversal: %+v %v", rev, err)
	}
	clock := newClock()
	if resp, err := s.Authorize(ctx, "T1", authReq("new", 1250), simDecider(clock, authReq("new", 1250))); err != nil || resp.Decision != wire.Approved {
		t.Fatalf("a new authorization: %+v %v", resp, err)
	}
}

func oldRow(t *testing.T, db *sql.DB, placeholders string) {
	t.Helper()
	req := authReq("old", 1250)
	b, _ := json.Marshal(wire.AuthorizationResponse{ID: req.ID, Decision: wire.Approved, AuthCode: "001250"})
	if _, err := db.Exec(`INSERT INTO authorizations (terminal, idempotency_key, content, response) VALUES `+placeholders,
		"T1", "old", contentHash(req), string(b)); err != nil {
		t.Fatal(err)
	}
}

// TestSQLite_Upgrade: a database created by the first acquirerd (user_version 0, the
// old authorizations table) is upgraded when opened, once.
func TestSQLite_Upgrade(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite3", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(v1Authorizations); err != nil {
		t.Fatal(err)
	}
	oldRow(t, db, `(?, ?, ?, ?)`)
	db.Close()
	for range 2 { // the second open finds it upgraded
		s, err := OpenSQLite(path, testMasterKey)
		if err != nil {
			t.Fatal(err)
		}
		var v int
		if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != sqliteVersion {
			t.Fatalf("user_version %d (%v), want %d", v, err, sqliteVersion)
		}
		s.Close()
	}
	s, err := OpenSQLite(path, testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	checkUpgraded(t, newEnv(t, s).store)
}

// TestPostgres_Upgrade: a database migrated by the first acquirerd (0001 only) gets 0002
// when a node opens it.
func TestPostgres_Upgrade(t *testing.T) {
	dsn := acquirertest.PostgresDSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	first, err := pgMigrations.ReadFile("migrations/postgres/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{string(first), `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,
		applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`, `INSERT INTO schema_migrations (version, name) VALUES (1, '0001_init.sql')`} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	oldRow(t, db, `($1, $2, $3, $4)`)
	s, err := OpenPostgres(t.Context(), dsn, testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	checkUpgraded(t, newEnv(t, s).store)
}
