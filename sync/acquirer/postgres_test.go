package acquirer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/acquirer/acquirertest"
	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// node is one acquirerd: its own connection pool and Server, serving on loopback.
type node struct {
	store *Postgres
	url   string
}

func newNodes(t *testing.T, dsn string, n int) []node {
	t.Helper()
	var nodes []node
	for range n {
		s, err := OpenPostgres(t.Context(), dsn, testMasterKey)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// Admission control out of the way: this is about the store under concurrent writers.
		srv := httptest.NewServer(New(s, Options{SimTimeout: 50 * time.Millisecond,
			Limits: Limits{MaxInFlight: 1000, PerTerminal: 1000}}))
		t.Cleanup(srv.Close)
		nodes = append(nodes, node{s, srv.URL})
	}
	return nodes
}

// send signs and sends one request; it is safe to call from several goroutines.
func send(base, terminal, method, path string, body any, out any) (int, error) {
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, r)
	if err := signing.Sign(req, terminal, testSigningKey, time.Now(), signing.NewNonce()); err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode, json.Unmarshal(data, out)
}

// TestPostgres_TwoNodes: two acquirerd nodes on one database receive the same overlapping
// batches of three terminals at the same time. Every record is stored once: across all
// answers each record is accepted exactly once and duplicate otherwise, the results feed
// holds one outcome per record in cursor order, and the same online authorization sent to
// both nodes at once is decided once. A nonce used on one node is a replay on the other.
func TestPostgres_TwoNodes(t *testing.T) {
	dsn := acquirertest.PostgresDSN(t)
	nodes := newNodes(t, dsn, 2)
	terminals := []string{"T1", "T2", "T3"}
	for _, id := range terminals {
		if err := nodes[0].store.AddTerminal(t.Context(), id, testSecret, wire.Policy{}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 60
	recs := chain(n, func(i int) int64 { return int64(1000 + i) })
	// Each sender sends these batches in this order; the windows overlap.
	windows := [][2]int{{0, 20}, {10, 40}, {0, 60}, {30, 60}, {40, 50}}
	type answer struct {
		terminal string
		resp     wire.BatchResponse
	}
	var mu sync.Mutex
	var answers []answer
	var wg sync.WaitGroup
	for _, nd := range nodes {
		for _, id := range terminals {
			for sender := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range windows {
						w := windows[(i+sender)%len(windows)]
						var resp wire.BatchResponse
						if _, err := send(nd.url, id, "POST", "/v1/terminals/"+id+"/batches", wire.Batch{Records: recs[w[0]:w[1]]}, &resp); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						answers = append(answers, answer{id, resp})
						mu.Unlock()
					}
				}()
			}
		}
	}
	// Meanwhile, the same online authorization, retried on both nodes.
	auths := make(chan wire.AuthorizationResponse, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var a wire.AuthorizationResponse
			if _, err := send(nodes[i%2].url, "T1", "POST", "/v1/authorizations", authReq("online-1", 4200), &a); err != nil {
				t.Error(err)
				return
			}
			auths <- a
		}()
	}
	wg.Wait()
	close(auths)
	if t.Failed() {
		t.FailNow()
	}

	accepted := map[string]int{}
	for _, a := range answers {
		for _, r := range a.resp.Results {
			key := fmt.Sprintf("%s/%d", a.terminal, r.Sequence)
			switch r.Status {
			case wire.Accepted:
				accepted[key]++
			case wire.Duplicate:
			default:
				t.Errorf("%s: %s %s", key, r.Status, r.Reason)
			}
		}
	}
	for _, id := range terminals {
		for q := 1; q <= n; q++ {
			if got := accepted[fmt.Sprintf("%s/%d", id, q)]; got != 1 {
				t.Errorf("%s sequence %d accepted %d times, want once", id, q, got)
			}
		}
		var count int
		if err := nodes[1].store.db.QueryRow(`SELECT count(*) FROM records WHERE terminal = $1`, id).Scan(&count); err != nil || count != n {
			t.Errorf("%s: %d records stored (%v), want %d", id, count, err, n)
		}
		res, err := nodes[1].store.Results(t.Context(), id, 0, 1000)
		if err != nil || len(res.Results) != n {
			t.Fatalf("%s: %d results (%v), want %d", id, len(res.Results), err, n)
		}
		seen := map[uint64]bool{}
		for i, r := range res.Results {
			if seen[r.Sequence] || (i > 0 && r.Cursor <= res.Results[i-1].Cursor) {
				t.Fatalf("%s: results feed repeats or is out of order: %+v", id, res.Results)
			}
			seen[r.Sequence] = true
		}
		var last wire.BatchResponse
		send(nodes[0].url, id, "POST", "/v1/terminals/"+id+"/batches", wire.Batch{Records: recs[n-1:]}, &last)
		if last.HighWater != n || len(last.Gaps) != 0 || statuses(last) != "duplicate" {
			t.Errorf("%s: after the storm %+v, want duplicate, high water %d, no gaps", id, last, n)
		}
	}
	var first *wire.AuthorizationResponse
	for a := range auths {
		if first == nil {
			first = &a
		} else if a != *first {
			t.Errorf("authorization answered %+v and %+v", *first, a)
		}
	}
	var count int
	nodes[0].store.db.QueryRow(`SELECT count(*) FROM authorizations WHERE terminal = 'T1'`).Scan(&count)
	if count != 1 {
		t.Errorf("%d authorizations stored, want 1", count)
	}

	// A request replayed to the other node is refused: nonces live in the database.
	req, _ := http.NewRequest("GET", nodes[0].url+"/v1/ping", nil)
	signing.Sign(req, "T1", testSigningKey, time.Now(), signing.NewNonce())
	for i, base := range []string{nodes[0].url, nodes[1].url} {
		again := req.Clone(context.Background())
		again.URL, _ = again.URL.Parse(base + "/v1/ping")
		again.Host = ""
		resp, err := http.DefaultClient.Do(again)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := []int{200, 401}[i]; resp.StatusCode != want {
			t.Fatalf("node %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
}

// TestPostgres_Migrations: nodes starting together migrate once; a node with another
// master key refuses to start.
func TestPostgres_Migrations(t *testing.T) {
	dsn := acquirertest.PostgresDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(t.Context(), dsn, testMasterKey)
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	s, err := OpenPostgres(t.Context(), dsn, testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var versions int
	files, _ := fs.Glob(pgMigrations, "migrations/postgres/*.sql")
	if err := s.db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&versions); err != nil || versions != len(files) || versions < 2 {
		t.Fatalf("schema_migrations holds %d rows (%v), want one per migration: %d", versions, err, len(files))
	}
	if _, err := OpenPostgres(t.Context(), dsn, bytes.Repeat([]byte{8}, 32)); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("another master key: %v, want a refusal naming the master key", err)
	}
	if _, err := OpenPostgres(t.Context(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", testMasterKey); err == nil {
		t.Fatal("a database that is not there opened")
	}
}

// BenchmarkStore_Batch measures batch ingest, records/s stored and answered, on SQLite and
// on PostgreSQL: "serial" is one terminal uploading batches of 100 back to back; "8-terminals"
// is eight terminals uploading at once (on PostgreSQL, what a fleet does to the shared
// database; SQLite serialises them on its one writer).
func BenchmarkStore_Batch(b *testing.B) {
	const size = 100
	link := func(prev *wire.Record, r wire.Record) string {
		if prev != nil && prev.Hash != r.PrevHash {
			return "chain broken"
		}
		return ""
	}
	decide := func(r wire.Record) wire.Result {
		d := Decide(r.Amount)
		return wire.Result{ID: r.ID, Sequence: r.Sequence, Decision: d.Decision, Reason: d.Reason, AuthCode: d.AuthCode, DecidedAt: time.Now()}
	}
	for _, k := range storeKinds {
		for _, parallel := range []int{1, 8} {
			name := k.name + "/serial"
			if parallel > 1 {
				name = fmt.Sprintf("%s/%d-terminals", k.name, parallel)
			}
			b.Run(name, func(b *testing.B) {
				s := k.open(b)
				defer s.Close()
				ctx := context.Background()
				for i := range parallel {
					if err := s.AddTerminal(ctx, fmt.Sprintf("B%d", i), testSecret, wire.Policy{}); err != nil {
						b.Fatal(err)
					}
				}
				type feed struct {
					next uint64
					prev string
				}
				feeds := make([]feed, parallel)
				for i := range feeds {
					feeds[i].next = 1
				}
				batches := 0
				start := time.Now()
				for b.Loop() {
					var wg sync.WaitGroup
					for i := range parallel {
						wg.Add(1)
						go func() {
							defer wg.Done()
							f := &feeds[i]
							recs := make([]wire.Record, size)
							for j := range recs {
								recs[j] = rec(f.next, fmt.Sprintf("b%d-%d", i, f.next), int64(100+f.next%97), f.prev)
								f.prev = recs[j].Hash
								f.next++
							}
							resp, err := s.StoreBatch(ctx, fmt.Sprintf("B%d", i), recs, link, decide)
							if err != nil || resp.Results[size-1].Status != wire.Accepted {
								b.Errorf("batch: %v %+v", err, resp.Results[size-1])
							}
						}()
					}
					wg.Wait()
					batches += parallel
				}
				b.ReportMetric(float64(batches*size)/time.Since(start).Seconds(), "records/s")
			})
		}
	}
}
