package uplink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/wire"
)

// BenchmarkDrain measures draining 10,000 queued offline records (batches of 100) from a
// journal to the acquirer endpoint (acquirer.Server on SQLite, chain verification on) on
// loopback: every record marked uploading, sent, stored durably at the acquirer, answered
// and acknowledged in the journal. Then the results feed is followed and every record
// settled (one journal transaction each). Reported:
//
//	drain-records/s    upload until every record is acknowledged
//	settle-records/s   results feed to approved/declined in the journal
//
// The journal is filled once and copied for each iteration, so each drain starts from the
// same 10,000 queued records and an empty acquirer.
func BenchmarkDrain(b *testing.B) {
	const n = 10_000
	ctx := context.Background()
	seed := newEnv(b)
	seed.fill(n)
	if err := seed.journal.Checkpoint(ctx); err != nil {
		b.Fatal(err)
	}
	seedPath := seed.journal.Path()
	seed.journal.Close()
	var drain, settle time.Duration
	iters := 0
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b)
		e.journal.Close()
		data, err := os.ReadFile(seedPath)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(e.dir, "journal.db")
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
		if e.journal, err = offline.Open(path, offline.Options{Key: e.key}); err != nil {
			b.Fatal(err)
		}
		s := e.syncer(e.client(e.serve(nil)))
		b.StartTimer()
		t0 := time.Now()
		rep, err := s.Drain(ctx)
		t1 := time.Now()
		if err != nil || rep.Accepted != n {
			b.Fatalf("drain: %v, accepted %d", err, rep.Accepted)
		}
		f, err := s.FollowResults(ctx)
		if err != nil || f.Settled != n {
			b.Fatalf("results: %v, settled %d", err, f.Settled)
		}
		drain += t1.Sub(t0)
		settle += time.Since(t1)
		iters++
		b.StopTimer()
		e.journal.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n*iters)/drain.Seconds(), "drain-records/s")
	b.ReportMetric(float64(n*iters)/settle.Seconds(), "settle-records/s")
}

// BenchmarkAuthorize measures the online authorization round trip (Client.Authorize:
// JSON, HMAC signing, the endpoint's signature check, nonce insert and authorization
// insert, each a durable SQLite commit, and the answer) against a bare HTTP round trip of
// the same size on loopback (a handler that answers a fixed JSON), interleaved in the same
// run. Reported: bare-µs, authorize-µs and overhead-µs (their difference), per round trip.
func BenchmarkAuthorize(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	c := e.client(e.serve(nil))
	answer, _ := json.Marshal(wire.AuthorizationResponse{ID: "0190f2a0-0000-7000-8000-000000000000", Decision: wire.Approved,
		AuthCode: "001250", DecidedAt: time.Now().UTC()})
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(answer)
	}))
	defer bare.Close()
	hc := &http.Client{Timeout: DefaultTimeout}
	req := func(i int) wire.AuthorizationRequest {
		return wire.AuthorizationRequest{ID: fmt.Sprintf("0190f2a0-0000-7000-8000-%012d", i), Sequence: uint64(i + 1), IdempotencyKey: fmt.Sprint("bench-", i),
			CapturedAt: time.Now().UTC().Truncate(time.Millisecond), Amount: 1250, Currency: "CNY", Method: "wallet-code", Scheme: "wechat-pay",
			Credential: "134567890123456789"}
	}
	var bareT, authT time.Duration
	i := 0
	for b.Loop() {
		body, _ := json.Marshal(req(i))
		t0 := time.Now()
		resp, err := hc.Post(bare.URL+"/v1/authorizations", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t1 := time.Now()
		a, err := c.Authorize(ctx, req(i))
		if err != nil || a.Decision != wire.Approved {
			b.Fatalf("authorize: %v %+v", err, a)
		}
		bareT, authT = bareT+t1.Sub(t0), authT+time.Since(t1)
		i++
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) / float64(i) }
	b.ReportMetric(us(bareT), "bare-µs")
	b.ReportMetric(us(authT), "authorize-µs")
	b.ReportMetric(us(authT-bareT), "overhead-µs")
}
