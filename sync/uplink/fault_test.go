package uplink

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/posagent/posagent"
)

// faultyEndpoint wraps the acquirer endpoint with faults of the endpoint itself: 503s and
// 429 Retry-After before anything is done, and "committed, but the response was lost":
// the request is handled to the end (the records are stored) and the connection is then
// closed without an answer. The first batch always loses its answer, so the duplicate
// path is always exercised.
type faultyEndpoint struct {
	next                          http.Handler
	mu                            sync.Mutex
	rng                           *rand.Rand
	unavailable, limited, lost    atomic.Int64
	pUnavailable, pLimited, pLost float64
	firstBatch                    atomic.Bool
}

func (f *faultyEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	roll := f.rng.Float64()
	f.mu.Unlock()
	batch := strings.HasSuffix(r.URL.Path, "/batches")
	switch {
	case batch && f.firstBatch.CompareAndSwap(false, true), roll < f.pLost:
		rec := httptest.NewRecorder()
		f.next.ServeHTTP(rec, r) // committed
		f.lost.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // and the answer never leaves
		}
	case roll < f.pLost+f.pUnavailable:
		f.unavailable.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":{"code":"unavailable","message":"injected"}}`))
	case roll < f.pLost+f.pUnavailable+f.pLimited:
		f.limited.Add(1)
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"error":{"code":"rate_limited","message":"injected"}}`))
	default:
		f.next.ServeHTTP(w, r)
	}
}

// TestSyncer_FaultyLink drains 10,000 records (1,000 with -short) through toxiproxy
// (latency, a bandwidth limit, connection resets, stalled connections that time out,
// answers cut short after the endpoint committed) and an endpoint that answers 503 and
// 429 and loses answers after committing. At the end the acquirer holds every record
// exactly once, with one decision each, the chain verified (no rejection), and the journal
// has every record acknowledged and settled.
func TestSyncer_FaultyLink(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 1_000
	}
	ctx := context.Background()
	e := newEnv(t)

	faults := &faultyEndpoint{rng: rand.New(rand.NewPCG(1, 2)), pUnavailable: 0.06, pLimited: 0.02, pLost: 0.06}
	upstream := e.serve(func(h http.Handler) http.Handler { faults.next = h; return faults })

	tp := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	proxy := toxiproxy.NewProxy(tp, "acquirer", "127.0.0.1:0", strings.TrimPrefix(upstream, "http://"))
	if err := proxy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	toxics := []string{
		`{"name":"latency","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":1,"jitter":1}}`,
		`{"name":"bandwidth","type":"bandwidth","stream":"upstream","toxicity":1,"attributes":{"rate":8000}}`,
		`{"name":"reset","type":"reset_peer","stream":"upstream","toxicity":0.05,"attributes":{"timeout":30}}`,
		`{"name":"cut","type":"limit_data","stream":"downstream","toxicity":0.05,"attributes":{"bytes":2000}}`,
		`{"name":"stall","type":"timeout","stream":"downstream","toxicity":0.02,"attributes":{"timeout":0}}`,
	}
	for _, j := range toxics {
		if _, err := proxy.Toxics.AddToxicJson(strings.NewReader(j)); err != nil {
			t.Fatalf("toxic %s: %v", j, err)
		}
	}

	c := e.client("http://" + proxy.Listen)
	c.HTTP.Timeout = time.Second // the stalled connections
	c.MaxAttempts = 30
	c.Breaker = NewBreaker(8, 100*time.Millisecond)
	s := e.syncer(c)
	s.BatchSize = 50
	s.MaxRounds = 50
	s.BreakerWait = time.Second
	// The terminal is offline for a while, then syncs, five times over: the journal holds
	// up to a fifth of the records at once (appending scans what is outstanding).
	var rep Report
	var fill, drain, follow time.Duration
	const rounds = 5
	for round := range rounds {
		t0 := time.Now()
		e.fillFrom(round*n/rounds, n/rounds)
		t1 := time.Now()
		r, err := s.Drain(ctx)
		t2 := time.Now()
		if err != nil {
			t.Fatalf("round %d: drain through the faulty link: %v (report %+v)", round, err, r)
		}
		f, err := s.FollowResults(ctx)
		if err != nil {
			t.Fatalf("round %d: results through the faulty link: %v", round, err)
		}
		fill, drain, follow = fill+t1.Sub(t0), drain+t2.Sub(t1), follow+time.Since(t2)
		rep.Accepted += r.Accepted
		rep.Duplicate += r.Duplicate
		rep.Rejected = append(rep.Rejected, r.Rejected...)
		rep.Batches += r.Batches
		rep.HighWater, rep.Gaps, rep.Left = r.HighWater, r.Gaps, r.Left
		rep.Settled += f.Settled
	}
	st := c.Stats()
	t.Logf("%d records: journaled in %s, drained in %s (%d batches, %d accepted, %d duplicate), settled in %s; %d requests, %d retries, %d failures; endpoint faults: %d lost after commit, %d 503, %d 429",
		n, fill.Round(time.Millisecond), drain.Round(time.Millisecond), rep.Batches, rep.Accepted, rep.Duplicate, follow.Round(time.Millisecond),
		st.Requests, st.Retries, st.Failures, faults.lost.Load(), faults.unavailable.Load(), faults.limited.Load())

	if len(rep.Rejected) != 0 {
		t.Fatalf("rejected %d records, first %+v: the chain did not verify", len(rep.Rejected), rep.Rejected[0])
	}
	if rep.Duplicate == 0 {
		t.Fatal("no duplicate: the answer lost after the first batch was committed was not retried as a duplicate")
	}
	if rep.Accepted+rep.Duplicate != n || rep.HighWater != uint64(n) || len(rep.Gaps) != 0 || rep.Left != 0 {
		t.Fatalf("acknowledged %d, high water %d, gaps %v, left %d; want %d acknowledged, high water %d, none left",
			rep.Accepted+rep.Duplicate, rep.HighWater, rep.Gaps, rep.Left, n, n)
	}
	records, seqs, keys, lo, hi, results := e.acquirerCounts()
	if records != n || seqs != n || keys != n || lo != 1 || hi != uint64(n) || results != n {
		t.Fatalf("acquirer holds %d records (%d sequences, %d keys, %d..%d) and %d decisions; want %d of each, 1..%d",
			records, seqs, keys, lo, hi, results, n, n)
	}
	js, err := e.journal.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if js.Unacked != 0 || js.ByState[posagent.StateApproved]+js.ByState[posagent.StateDeclined] != n {
		t.Fatalf("journal: %d unacknowledged, states %v", js.Unacked, js.ByState)
	}
	if rep.Settled != n {
		t.Fatalf("settled %d records, want %d", rep.Settled, n)
	}
}
