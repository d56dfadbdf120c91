package uplink

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// env is a terminal and its acquirer on loopback: a real journal (SQLite), a real
// acquirer endpoint (acquirer.Server on its SQLite store, chain verification on), both
// provisioned the same secret, over real HTTP.
type env struct {
	t       testing.TB
	dir     string
	key     *offline.Key
	journal *offline.Journal
	store   *acquirer.SQLite
	srv     *httptest.Server
	handler http.Handler // the acquirer endpoint, for wrapping
}

const terminalID = "T1"

var cny, _ = posagent.LookupCurrency("CNY")

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	secret := bytes.Repeat([]byte{0x5a}, offline.KeySize)
	keyFile := filepath.Join(dir, "terminal.key")
	if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", secret)), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := offline.LoadKey(keyFile, false)
	if err != nil {
		t.Fatal(err)
	}
	policy := offline.Policy{
		Methods:  []posagent.Method{posagent.MethodWalletCode, posagent.MethodEMVCPM},
		Limits:   map[string]offline.Limit{"CNY": {PerTransaction: 1 << 40, Outstanding: 1 << 60}},
		MaxCount: 1 << 30,
	}
	j, err := offline.Open(filepath.Join(dir, "journal.db"), offline.Options{Key: key, Terminal: terminalID, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	store, err := acquirer.OpenSQLite(filepath.Join(dir, "acquirer.db"), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.AddTerminal(context.Background(), terminalID, secret, wire.Policy{}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, key: key, journal: j, store: store}
	e.handler = acquirer.New(store, acquirer.Options{VerifyChain: acquirer.VerifyJournalRecord, SimTimeout: 5 * time.Second})
	return e
}

// serve starts the endpoint behind h (the plain endpoint when nil) and returns its URL.
func (e *env) serve(wrap func(http.Handler) http.Handler) string {
	h := e.handler
	if wrap != nil {
		h = wrap(h)
	}
	e.srv = httptest.NewServer(h)
	e.t.Cleanup(e.srv.Close)
	return e.srv.URL
}

func (e *env) client(url string) *Client {
	e.t.Helper()
	c, err := New(url, terminalID, e.key)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Backoff = FullJitter(time.Millisecond, 20*time.Millisecond)
	return c
}

func (e *env) syncer(c *Client) *Syncer {
	return &Syncer{Journal: e.journal, Client: c, Key: e.key}
}

// amountFor gives sale i its amount: every 7th is declined after upload (…61).
func amountFor(i int) int64 {
	if i%7 == 3 {
		return int64(1000+i)*100 + acquirer.SimDeclineLater
	}
	return int64(1000+i)*100 + 25
}

// fill journals n offline sales.
func (e *env) fill(n int) { e.fillFrom(0, n) }

// fillFrom journals n offline sales numbered from first.
func (e *env) fillFrom(first, n int) {
	e.t.Helper()
	ctx := context.Background()
	for i := first; i < first+n; i++ {
		_, _, err := e.journal.Append(ctx, offline.NewSale{
			IdempotencyKey: fmt.Sprintf("pos-%06d", i), Reference: fmt.Sprintf("R%06d", i),
			Amount: posagent.Amount{Minor: amountFor(i), Currency: cny},
			Method: posagent.MethodWalletCode, Scheme: posagent.SchemeWeChatPay,
			Credential: fmt.Sprintf("1345678901%08d", i), Offline: true,
		})
		if err != nil {
			e.t.Fatalf("append %d: %v", i, err)
		}
	}
}

// acquirerCounts reads the acquirer's own database: records stored for the terminal,
// distinct sequences and idempotency keys, the sequence range, and decisions made.
func (e *env) acquirerCounts() (records, seqs, keys int, lo, hi uint64, results int) {
	e.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(e.dir, "acquirer.db")+"?mode=ro&_busy_timeout=5000")
	if err != nil {
		e.t.Fatal(err)
	}
	defer db.Close()
	err = db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT sequence), COUNT(DISTINCT idempotency_key), COALESCE(MIN(sequence),0), COALESCE(MAX(sequence),0)
		FROM records WHERE terminal = ?`, terminalID).Scan(&records, &seqs, &keys, &lo, &hi)
	if err == nil {
		err = db.QueryRow(`SELECT COUNT(*) FROM results WHERE terminal = ?`, terminalID).Scan(&results)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return
}
