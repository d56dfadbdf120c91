package device

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/flock"
	"github.com/posagent/posagent/sync/acquirer"
)

// TestAgent_MoneyMovesExactlyOnce runs a wallet payment through each way an online
// authorization's outcome can be lost, late or pending, through the real stack (possim's
// scanner, the agent, the acquirer over HTTP on its SQLite file), and checks that the
// counter's final state and the acquirer's ledger agree: approved at the counter ⇔
// captured at the acquirer; anything else ⇒ nothing captured, and no reversal left unsent.
func TestAgent_MoneyMovesExactlyOnce(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Checkout.CheckWindow = Dur(4 * time.Second)
		c.Checkout.PendingWindow = Dur(3 * time.Second)
	})
	tests := []struct {
		name      string
		sim       int64
		wantState PaymentState
		wantCode  string
		via       PaymentState // an open state the payment must pass through ("" : none required)
	}{
		{"approved, answer lost", acquirer.SimLostAnswer, PaymentApproved, "", PaymentChecking},
		{"approved after the client's timeout", acquirer.SimLateApproval, PaymentApproved, "", PaymentChecking},
		{"hangs, never decided", acquirer.SimTimeout, PaymentFailed, "reversed", PaymentChecking},
		{"approved, then 502", acquirer.SimBadGateway, PaymentApproved, "", PaymentChecking},
		{"customer confirms", acquirer.SimPendingApprove, PaymentApproved, "", PaymentPendingCustomer},
		{"customer cancels in the wallet", acquirer.SimPendingDecline, PaymentDeclined, "declined", PaymentPendingCustomer},
		{"customer never confirms", acquirer.SimPendingForever, PaymentFailed, "reversed", PaymentPendingCustomer},
		{"plain approval", 0, PaymentApproved, "", ""},
		{"plain decline", acquirer.SimDeclineFunds, PaymentDeclined, "declined", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.waitPhase(PhaseIdle)
			ev := e.subscribe("")
			key := "k-money-" + tt.name
			p := e.create(int64(1000+100*i)+tt.sim, key, ModeScan)
			e.scan(wechatCode)
			var since time.Time
			if tt.via != "" {
				ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == string(tt.via) })
				since = time.Now()
			}
			got := e.wait(p.ID, done)
			if !since.IsZero() {
				t.Logf("%s → %s %.0f ms after the payment became %s", tt.name, got.State, float64(time.Since(since).Microseconds())/1000, tt.via)
			}
			code := ""
			if got.Error != nil {
				code = got.Error.Code
			}
			if got.State != tt.wantState || code != tt.wantCode {
				t.Fatalf("got %s %q (%+v), want %s %q", got.State, code, got.Error, tt.wantState, tt.wantCode)
			}
			e.waitReversals()
			e.agree(got)
			if l, ok := e.ledger(key); tt.wantState == PaymentApproved && (!ok || l.State != "approved") {
				t.Errorf("ledger %+v (found %v), want approved", l, ok)
			}
		})
	}
}

// A second agent on the same journal is refused at once (one writer), and so is a sync
// beside a running agent (cmd/posagent tests that one).
func TestAgent_OneWriterPerJournal(t *testing.T) {
	e := newEnv(t, nil)
	_, err := New(context.Background(), e.cfg, Options{})
	if !errors.Is(err, flock.ErrLocked) {
		t.Fatalf("second agent: got %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), "another posagent") {
		t.Errorf("message %q does not say what holds it", err)
	}
}

// An existing payments.db (the store of earlier versions) is moved into the journal on the
// first start: a retry of an old payment's key is still a look-up, and the old file is
// renamed so it is never read again.
func TestAgent_MigratesPaymentStore(t *testing.T) {
	e := newEnvStopped(t, nil)
	if err := os.MkdirAll(e.cfg.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(e.cfg.StateDir, "payments.db")
	db, err := sql.Open("sqlite3", "file:"+old)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Now().Add(-time.Hour).UTC()
	data := fmt.Sprintf(`{"id":"old-1","state":"approved","amount":700,"currency":"CNY","mode":"scan","offline":false,"idempotency_key":"k-old","created_at":%q,"updated_at":%q,"expires_at":%q}`,
		created.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano))
	for _, q := range []string{
		`CREATE TABLE payments (id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, done INTEGER NOT NULL, data TEXT NOT NULL)`,
		`INSERT INTO payments VALUES ('old-1', 'k-old', 1, '` + data + `')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	e.start()
	var got Payment
	if code := e.do("POST", "/v1/payments", PaymentRequest{Amount: 700, Currency: "CNY", IdempotencyKey: "k-old", Mode: ModeScan}, &got); code/100 != 2 || got.ID != "old-1" || got.State != PaymentApproved {
		t.Fatalf("retry of a migrated payment: %d %+v", code, got)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("payments.db still there: %v", err)
	}
	if _, err := os.Stat(old + ".migrated"); err != nil {
		t.Errorf("payments.db.migrated: %v", err)
	}
}

// A journal found damaged at start is set aside, and the fresh one continues the chain the
// acquirer holds: the next sale takes the sequence after the acquirer's highest and chains
// onto its hash, so it is accepted, not refused as a fork, and nothing collides.
func TestAgent_DamagedJournalContinuesTheChain(t *testing.T) {
	e := newEnv(t, nil)
	var last *Payment
	for i := range 3 {
		p := e.create(int64(300+i), fmt.Sprintf("k-before-%d", i), ModeScan)
		e.scan(wechatCode)
		last = e.wait(p.ID, done)
		if last.State != PaymentApproved {
			t.Fatalf("sale %d: %+v", i, last)
		}
	}
	waitHighWater(t, e, last.Sequence)
	e.shutdown()

	// Damage the journal where SQLite's quick_check sees it: the pages after the first.
	f, err := os.OpenFile(e.cfg.Journal, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, int(fi.Size())-4096), 4096); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.Remove(e.cfg.Journal + "-wal")
	os.Remove(e.cfg.Journal + "-shm")

	e.start()
	p := e.create(777, "k-after", ModeScan)
	e.scan(wechatCode)
	got := e.wait(p.ID, done)
	if got.State != PaymentApproved {
		t.Fatalf("after the damage: %+v %+v", got, got.Error)
	}
	if got.Sequence != last.Sequence+1 {
		t.Errorf("first sequence of the fresh journal: got %d, want %d (after the acquirer's %d)", got.Sequence, last.Sequence+1, last.Sequence)
	}
	waitHighWater(t, e, got.Sequence)
	e.agree(got)
}

// waitHighWater waits until the acquirer holds every record up to seq.
func waitHighWater(t *testing.T, e *env, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		h, err := e.store.ChainHead(context.Background(), "T1")
		if err == nil && h.Sequence >= seq {
			var st struct {
				Sync struct {
					HighWater uint64 `json:"high_water"`
				}
			}
			if e.do("GET", "/v1/status", nil, &st) == 200 && st.Sync.HighWater >= seq {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the acquirer does not hold sequence %d: head %+v %v", seq, h, err)
		}
		e.agent.kickSync()
		time.Sleep(20 * time.Millisecond)
	}
}
