package offline

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkStore measures the durable store of one sale (Journal.Append: BEGIN IMMEDIATE,
// idempotency look-up, sequence, chain head, insert, history, COMMIT with the WAL fsynced)
// against the floor for this design: a bare go-sqlite3 INSERT of the same row, into the
// same schema, with the same pragmas (WAL, synchronous=FULL), in the same run, interleaved
// so that both see the same disk. Reported per operation:
//
//	floor-p50-µs, floor-p99-µs   the bare insert
//	store-p50-µs, store-p99-µs   Journal.Append
//	store/floor                  p50 ratio
//	ledger-p50-µs, ledger-p99-µs Journal.AppendWith: the sale and its payment in one
//	                             transaction (what the agent does since the one ledger)
//	ledger/floor                 p50 ratio
//	crypto+chain-µs              AES-GCM seal, credential HMAC, canonical encoding, SHA-256, record HMAC
//	crypto+chain/floor           that cost as a fraction of the floor's p50
func BenchmarkStore(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	p := testPolicy()
	p.MaxCount = 1 << 30
	p.Limits["CNY"] = Limit{PerTransaction: 1 << 40, Outstanding: 1 << 60}
	j := openTest(b, filepath.Join(dir, "journal.db"), Options{Policy: p, Terminal: "T1"})

	floorPath := filepath.Join(dir, "floor.db")
	floor, err := sql.Open("sqlite3", "file:"+floorPath+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=10000&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer floor.Close()
	floor.SetMaxOpenConns(1)
	ms, _ := migrations()
	if _, err := floor.Exec(ms[0]); err != nil {
		b.Fatal(err)
	}
	var fsync string
	floor.QueryRow("PRAGMA synchronous").Scan(&fsync)
	if fsync != "2" {
		b.Fatalf("floor synchronous = %s, want 2 (FULL)", fsync)
	}
	blob := make([]byte, 32)
	sealed := make([]byte, 12+18+16)

	var storeLat, floorLat, ledgerLat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// An online sale: what every sale goes through first. An offline one adds the policy
		// check, a scan of the outstanding records (bounded by the policy's MaxCount).
		s := sale(fmt.Sprint("bench-", i), 1250, false)
		t0 := time.Now()
		_, err := floor.ExecContext(ctx, `INSERT INTO sales (seq, id, terminal, idempotency_key, reference, captured_at, amount, currency,
			method, scheme, credential, credential_tag, credential_masked, offline, state, updated_at, prev_hash, hash, mac)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			i+1, fmt.Sprintf("0195f3c2-7b1a-7cc0-8a6e-%012d", i), "T1", s.IdempotencyKey, s.Reference, t0.UnixMilli(), s.Amount.Minor,
			"CNY", string(s.Method), string(s.Scheme), sealed, blob, "134567********6789", false, "authorizing", t0.UnixMilli(), blob, blob, blob)
		floorLat = append(floorLat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, _, err := j.Append(ctx, s); err != nil {
			b.Fatal(err)
		}
		storeLat = append(storeLat, time.Since(t1))
		// The agent's append since the one ledger: the sale and its payment in one transaction.
		s2 := s
		s2.IdempotencyKey = "ledger-" + s.IdempotencyKey
		pay := &PaymentRow{ID: "p-" + s2.IdempotencyKey, IdempotencyKey: s2.IdempotencyKey, State: "waiting", Data: benchPayment}
		t2 := time.Now()
		if _, _, err := j.AppendWith(ctx, s2, pay); err != nil {
			b.Fatal(err)
		}
		ledgerLat = append(ledgerLat, time.Since(t2))
	}
	b.StopTimer()
	crypto := cryptoCost(b)
	fp50, fp99 := percentiles(floorLat)
	sp50, sp99 := percentiles(storeLat)
	b.ReportMetric(us(fp50), "floor-p50-µs")
	b.ReportMetric(us(fp99), "floor-p99-µs")
	b.ReportMetric(us(sp50), "store-p50-µs")
	b.ReportMetric(us(sp99), "store-p99-µs")
	b.ReportMetric(float64(sp50)/float64(fp50), "store/floor")
	lp50, lp99 := percentiles(ledgerLat)
	b.ReportMetric(us(lp50), "ledger-p50-µs")
	b.ReportMetric(us(lp99), "ledger-p99-µs")
	b.ReportMetric(float64(lp50)/float64(fp50), "ledger/floor")
	b.ReportMetric(us(crypto), "crypto+chain-µs")
	b.ReportMetric(float64(crypto)/float64(fp50), "crypto+chain/floor")
	b.ReportMetric(0, "ns/op") // the wall time per op mixes both stores; the metrics above are the figures
}

// benchPayment is a payment as the agent keeps it (about the size of the real JSON).
var benchPayment = []byte(`{"id":"0195f3c2-7b1a-7cc0-8a6e-000000000001","state":"waiting","amount":1250,"currency":"CNY","mode":"scan","method":"wallet-code","scheme":"wechat-pay","credential_masked":"134567********6789","offline":false,"reference":"R-1","idempotency_key":"k-1","created_at":"2026-12-01T12:00:00Z","updated_at":"2026-12-01T12:00:00Z","expires_at":"2026-12-01T12:01:00Z","core":{"Mode":"scan","State":"waiting"}}`)

// cryptoCost is the median time of what Append adds in CPU over the bare insert: encrypt
// the credential, tag it, encode the entry, hash it onto the chain, and MAC the hash.
func cryptoCost(b *testing.B) time.Duration {
	k := testKey(b)
	e := testEntry()
	var lat []time.Duration
	for range 2000 {
		t0 := time.Now()
		cred := []byte("134567890123456789")
		if _, err := k.seal(e.ID, cred); err != nil {
			b.Fatal(err)
		}
		e.CredentialTag = k.CredentialTag(cred)
		canon, _ := e.MarshalBinary()
		h := ChainHash(canon, GenesisHash)
		k.RecordMAC(h)
		lat = append(lat, time.Since(t0))
	}
	p50, _ := percentiles(lat)
	return p50
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkVerify is the chain walk per record, with the key (HMAC and credential checks).
func BenchmarkVerify(b *testing.B) {
	j := openTest(b, filepath.Join(b.TempDir(), "j.db"), Options{Policy: testPolicy()})
	ctx := context.Background()
	const n = 2000
	for i := range n {
		if _, _, err := j.Append(ctx, sale(fmt.Sprint(i), 100, false)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if rep, err := j.Verify(ctx); err != nil || rep.Records != n {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/n/1e3, "µs/record")
}
