package acquirer

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

// BenchmarkStore_Ledger measures the ledger's stream on SQLite and PostgreSQL: entries/s
// over a store holding 10,000 online authorizations and 10,000 offline records (with their
// results) of one terminal, and how long one authorization's status and a reversal take
// beside them.
func BenchmarkStore_Ledger(b *testing.B) {
	const n = 10_000
	ok := func(*wire.Record, wire.Record) string { return "" }
	decide := func(r wire.Record) wire.Result {
		d := Decide(r.Amount)
		return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: d.Decision, Reason: d.Reason, DecidedAt: time.Now()}
	}
	for _, k := range storeKinds {
		b.Run(k.name, func(b *testing.B) {
			s := k.open(b)
			defer s.Close()
			ctx := context.Background()
			if err := s.AddTerminal(ctx, "B1", testSecret, wire.Policy{}); err != nil {
				b.Fatal(err)
			}
			// The authorizations in one transaction, as authorizeTx writes them.
			var db *sql.DB
			d := sqliteSQL
			switch s := s.(type) {
			case *SQLite:
				db = s.db
			case *Postgres:
				db, d = s.db, postgresSQL
			}
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				b.Fatal(err)
			}
			for i := range n {
				req := authReq(fmt.Sprintf("a%d", i), int64(100+i%97))
				req.Sequence = uint64(2*i + 1)
				out := Outcome{Response: Decide(req.Amount)}
				if _, err := authorizeTx(ctx, tx, d, "B1", req, func() Outcome { return out }, time.Now()); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Commit(); err != nil {
				b.Fatal(err)
			}
			prev := ""
			for i := 0; i < n; i += 500 {
				recs := make([]wire.Record, 500)
				for j := range recs {
					recs[j] = rec(uint64(2*(i+j)+2), fmt.Sprintf("r%d", i+j), int64(100+(i+j)%97), prev)
					prev = recs[j].Hash
				}
				if _, err := s.StoreBatch(ctx, "B1", recs, ok, decide); err != nil {
					b.Fatal(err)
				}
			}
			entries := 0
			start := time.Now()
			for b.Loop() {
				err := s.Ledger(ctx, "B1", func(wire.LedgerEntry) error { entries++; return nil })
				if err != nil {
					b.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			if entries != b.N*2*n {
				b.Fatalf("%d entries in %d runs, want %d each", entries, b.N, 2*n)
			}
			b.ReportMetric(float64(entries)/elapsed.Seconds(), "entries/s")
			t0 := time.Now()
			const q = 200
			for i := range q {
				if st, err := s.AuthorizationStatus(ctx, "B1", fmt.Sprintf("id-a%d", i)); err != nil || st.State == wire.StatusNotFound {
					b.Fatalf("status: %+v %v", st, err)
				}
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/q, "status-µs")
			t0 = time.Now()
			for i := range q {
				req := authReq(fmt.Sprintf("a%d", i), int64(100+i%97))
				req.Sequence = uint64(2*i + 1)
				if _, err := s.Reverse(ctx, "B1", reversalOf(req)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(time.Since(t0).Microseconds())/q, "reversal-µs")
		})
	}
}
