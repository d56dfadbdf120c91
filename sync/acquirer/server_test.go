package acquirer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer/acquirertest"
	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// testSecret is the terminals' provisioned secret; requests are signed with the key
// derived from it, as a terminal signs them.
var (
	testSecret     = []byte("terminal-secret-0123456789abcdef")
	testSigningKey = signingKey(testSecret)
)

func signingKey(secret []byte) []byte {
	k, err := offline.NewKey(secret)
	if err != nil {
		panic(err)
	}
	return k.SigningKey()
}

type env struct {
	t     *testing.T
	srv   *httptest.Server
	store Store
}

// storeKind is one implementation of Store the contract tests run against.
type storeKind struct {
	name string
	open func(t testing.TB) Store
}

var testMasterKey = bytes.Repeat([]byte{7}, 32)

// storeKinds are the stores every contract test runs against: SQLite always, PostgreSQL
// when $POSAGENT_PG_DSN names a database (acquirertest.PostgresDSN skips, or fails in CI).
var storeKinds = []storeKind{
	{"sqlite", func(t testing.TB) Store {
		s, err := OpenSQLite(filepath.Join(t.TempDir(), "acq.db"), testMasterKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"postgres", func(t testing.TB) Store {
		s, err := OpenPostgres(context.Background(), acquirertest.PostgresDSN(t), testMasterKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
}

// eachStore runs fn as a subtest per store kind, each on a fresh store and endpoint.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { fn(t, newEnv(t, k.open(t))) })
	}
}

// newEnv registers terminals T1 and T2 in store and serves the endpoint over it.
func newEnv(t *testing.T, store Store) *env {
	t.Helper()
	t.Cleanup(func() { store.Close() })
	policy := wire.Policy{MethodsOffline: []string{"emv-cpm"}, MaxAmount: map[string]int64{"CNY": 50000}, MaxCount: 100}
	for _, id := range []string{"T1", "T2"} {
		if err := store.AddTerminal(t.Context(), id, testSecret, policy); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(New(store, Options{SimTimeout: 50 * time.Millisecond}))
	t.Cleanup(srv.Close)
	return &env{t, srv, store}
}

// do sends a request signed by terminal and decodes the JSON answer into out.
func (e *env) do(terminal, method, path string, body any, out any) (int, http.Header) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, r)
	if terminal != "" {
		if err := signing.Sign(req, terminal, testSigningKey, time.Now(), signing.NewNonce()); err != nil {
			e.t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func errorCode(e *env, terminal, method, path string, body any) (int, string) {
	var eb wire.ErrorBody
	status, _ := e.do(terminal, method, path, body, &eb)
	return status, eb.Error.Code
}

func TestServer_Auth(t *testing.T) { eachStore(t, testServerAuth) }

func testServerAuth(t *testing.T, e *env) {
	var p wire.Ping
	if status, _ := e.do("T1", "GET", "/v1/ping", nil, &p); status != 200 || p.Terminal != "T1" {
		t.Fatalf("ping: %d %+v", status, p)
	}
	tests := []struct {
		name       string
		terminal   string
		path       string
		wantStatus int
		wantCode   string
	}{
		{"unsigned", "", "/v1/ping", 401, wire.CodeUnsigned},
		{"unknown terminal", "T9", "/v1/ping", 401, wire.CodeUnknown},
		{"other terminal's results", "T1", "/v1/terminals/T2/results", 403, wire.CodeForbidden},
		{"no such endpoint", "T1", "/v1/nothing", 404, wire.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := errorCode(e, tt.terminal, "GET", tt.path, nil)
			if status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", status, code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestServer_Replay(t *testing.T) { eachStore(t, testServerReplay) }

func testServerReplay(t *testing.T, e *env) {
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/ping", nil)
	signing.Sign(req, "T1", testSigningKey, time.Now(), signing.NewNonce())
	for i, want := range []int{200, 401} {
		again := req.Clone(req.Context())
		resp, err := http.DefaultClient.Do(again)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("attempt %d: status %d, want %d", i, resp.StatusCode, want)
		}
	}
}

func authReq(key string, amount int64) wire.AuthorizationRequest {
	return wire.AuthorizationRequest{ID: "id-" + key, Sequence: 1, IdempotencyKey: key, CapturedAt: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
		Amount: amount, Currency: "CNY", Method: "wallet-code", Scheme: "wechat-pay", Credential: "134567890123456789"}
}

func TestServer_Authorize(t *testing.T) { eachStore(t, testServerAuthorize) }

func testServerAuthorize(t *testing.T, e *env) {
	var a wire.AuthorizationResponse
	if status, _ := e.do("T1", "POST", "/v1/authorizations", authReq("k1", 1250), &a); status != 200 || a.Decision != wire.Approved {
		t.Fatalf("approve: %d %+v", status, a)
	}
	var again wire.AuthorizationResponse
	e.do("T1", "POST", "/v1/authorizations", authReq("k1", 1250), &again)
	if again != a {
		t.Fatalf("retry got %+v, want the original %+v", again, a)
	}
	if status, code := errorCode(e, "T1", "POST", "/v1/authorizations", authReq("k1", 9999)); status != 409 || code != wire.CodeConflict {
		t.Fatalf("key reuse: %d %s", status, code)
	}
	var d wire.AuthorizationResponse
	if e.do("T1", "POST", "/v1/authorizations", authReq("k2", 1251), &d); d.Decision != wire.Declined || d.Reason == "" {
		t.Fatalf("decline: %+v", d)
	}
	if status, _ := errorCode(e, "T1", "POST", "/v1/authorizations", authReq("k3", 1292)); status != 503 {
		t.Fatalf("simulated retry: first attempt %d, want 503", status)
	}
	if status, _ := e.do("T1", "POST", "/v1/authorizations", authReq("k3", 1292), &d); status != 200 || d.Decision != wire.Approved {
		t.Fatalf("simulated retry: second attempt %d %+v", status, d)
	}
	var eb wire.ErrorBody
	status, hdr := e.do("T1", "POST", "/v1/authorizations", authReq("k4", 1293), &eb)
	if status != 429 || hdr.Get("Retry-After") != "1" {
		t.Fatalf("rate limit: %d Retry-After %q", status, hdr.Get("Retry-After"))
	}
	if status, _ := errorCode(e, "T1", "POST", "/v1/authorizations", authReq("k5", 1291)); status != 503 {
		t.Fatalf("simulated timeout: %d", status)
	}
}

func TestServer_BadInput(t *testing.T) { eachStore(t, testServerBadInput) }

func testServerBadInput(t *testing.T, e *env) {
	tests := []struct {
		name       string
		path, body string
		wantStatus int
		wantCode   string
	}{
		{"malformed JSON", "/v1/authorizations", `{"amount":`, 400, wire.CodeBadRequest},
		{"unknown field", "/v1/authorizations", `{"amount":1,"tip":2}`, 400, wire.CodeBadRequest},
		{"wrong type", "/v1/authorizations", `{"amount":"12.50"}`, 400, wire.CodeBadRequest},
		{"trailing data", "/v1/authorizations", `{} {}`, 400, wire.CodeBadRequest},
		{"missing fields", "/v1/authorizations", `{"amount":100}`, 422, wire.CodeInvalid},
		{"empty batch", "/v1/terminals/T1/batches", `{"records":[]}`, 422, wire.CodeInvalid},
		{"batch out of order", "/v1/terminals/T1/batches", mustJSON(wire.Batch{Records: []wire.Record{rec(2, "b", 100, ""), rec(1, "a", 100, "")}}), 422, wire.CodeInvalid},
		{"sequence from the future", "/v1/terminals/T1/batches", mustJSON(wire.Batch{Records: []wire.Record{rec(1, "a", 100, ""), rec(5_000_000, "b", 100, "")}}), 422, wire.CodeInvalid},
		{"bad results cursor", "/v1/terminals/T1/results?after=x", "", 400, wire.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			var body any = tt.body
			if tt.body == "" {
				method, body = "GET", nil
			}
			if status, code := errorCode(e, "T1", method, tt.path, body); status != tt.wantStatus || code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", status, code, tt.wantStatus, tt.wantCode)
			}
		})
	}
	var res wire.Results
	e.do("T1", "GET", "/v1/terminals/T1/results", nil, &res)
	if len(res.Results) != 0 {
		t.Fatalf("bad input changed the store: %+v", res)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

// rec makes a record whose hash is derived from its fields, chained to prev.
func rec(seq uint64, key string, amount int64, prev string) wire.Record {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d|%s|%d|%s", seq, key, amount, prev)))
	h := hex.EncodeToString(sum[:])
	return wire.Record{ID: "id-" + key, Sequence: seq, IdempotencyKey: key, CapturedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Amount: amount, Currency: "CNY", Method: "emv-cpm", Offline: true, State: "stored", PrevHash: prev, Hash: h, MAC: h}
}

func chain(n int, amount func(i int) int64) []wire.Record {
	var out []wire.Record
	prev := ""
	for i := 1; i <= n; i++ {
		r := rec(uint64(i), fmt.Sprintf("k%d", i), amount(i), prev)
		out = append(out, r)
		prev = r.Hash
	}
	return out
}

func statuses(resp wire.BatchResponse) string {
	var s []string
	for _, r := range resp.Results {
		s = append(s, string(r.Status))
	}
	return strings.Join(s, ",")
}

func TestServer_Batch(t *testing.T) { eachStore(t, testServerBatch) }

func testServerBatch(t *testing.T, e *env) {
	recs := chain(5, func(i int) int64 { return int64(1000 + i*100) })
	recs[3].Amount = 1261 // declined after upload
	recs[3] = rec(4, "k4", 1261, recs[2].Hash)
	recs[4] = rec(5, "k5", 1500, recs[3].Hash)

	var resp wire.BatchResponse
	if status, _ := e.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: recs[:3]}, &resp); status != 200 {
		t.Fatalf("batch: %d", status)
	}
	if got, want := statuses(resp), "accepted,accepted,accepted"; got != want || resp.HighWater != 3 {
		t.Fatalf("first batch %s hw %d, want %s hw 3", got, resp.HighWater, want)
	}
	// The response was lost: the terminal sends the same records again, plus the rest.
	e.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: recs}, &resp)
	if got, want := statuses(resp), "duplicate,duplicate,duplicate,accepted,accepted"; got != want || resp.HighWater != 5 {
		t.Fatalf("second batch %s hw %d, want %s hw 5", got, resp.HighWater, want)
	}
	// A fork: sequence 5 again with other content; an idempotency key reused; a broken link.
	fork := rec(5, "k5", 9999, recs[3].Hash)
	reuse := rec(6, "k1", 100, recs[4].Hash)
	broken := rec(7, "k7", 100, strings.Repeat("0", 64))
	e.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: []wire.Record{fork, reuse, broken}}, &resp)
	if got, want := statuses(resp), "rejected,rejected,accepted"; got != want {
		t.Fatalf("bad records %s, want %s (%+v)", got, want, resp.Results)
	}
	if !strings.Contains(resp.Results[0].Reason, "fork") || !strings.Contains(resp.Results[1].Reason, "idempotency key") {
		t.Fatalf("reasons %+v", resp.Results)
	}
	if resp.HighWater != 5 || len(resp.Gaps) != 1 || resp.Gaps[0] != (wire.Gap{From: 6, To: 6}) {
		t.Fatalf("high water %d gaps %+v, want 5 and [6-6]", resp.HighWater, resp.Gaps)
	}
	// A record that does not link to its stored predecessor is refused.
	link := rec(8, "k8", 100, strings.Repeat("1", 64))
	e.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: []wire.Record{link}}, &resp)
	if resp.Results[0].Status != wire.Rejected || !strings.Contains(resp.Results[0].Reason, "chain") {
		t.Fatalf("broken link: %+v", resp.Results)
	}
	// Results feed: one outcome per accepted offline record, once.
	var res wire.Results
	e.do("T1", "GET", "/v1/terminals/T1/results?after=0", nil, &res)
	if len(res.Results) != 6 {
		t.Fatalf("results %d, want 6: %+v", len(res.Results), res.Results)
	}
	declined := 0
	for _, r := range res.Results {
		if r.Decision == wire.Declined {
			declined++
		}
	}
	if declined != 1 {
		t.Fatalf("declined %d, want 1", declined)
	}
	var more wire.Results
	e.do("T1", "GET", fmt.Sprintf("/v1/terminals/T1/results?after=%d", res.Next), nil, &more)
	if len(more.Results) != 0 {
		t.Fatalf("feed repeats after the cursor: %+v", more.Results)
	}
	// Terminals are separate: T2's sequence 1 is not T1's.
	e.do("T2", "POST", "/v1/terminals/T2/batches", wire.Batch{Records: recs[:1]}, &resp)
	if statuses(resp) != "accepted" {
		t.Fatalf("T2: %s", statuses(resp))
	}
}

func TestServer_OrdersAndConfig(t *testing.T) { eachStore(t, testServerOrdersAndConfig) }

func testServerOrdersAndConfig(t *testing.T, e *env) {
	var o wire.Order
	e.do("T1", "GET", "/v1/orders/ORDER-1", nil, &o)
	if o.State != "pending" {
		t.Fatalf("first poll: %+v", o)
	}
	e.do("T1", "GET", "/v1/orders/ORDER-1", nil, &o)
	if o.State != "paid" || o.PaidAt.IsZero() {
		t.Fatalf("second poll: %+v", o)
	}
	e.do("T1", "GET", "/v1/orders/ORDER-2-EXPIRE", nil, &o)
	e.do("T1", "GET", "/v1/orders/ORDER-2-EXPIRE", nil, &o)
	if o.State != "expired" {
		t.Fatalf("expiring order: %+v", o)
	}
	if status, _ := errorCode(e, "T2", "GET", "/v1/orders/ORDER-1", nil); status != 404 {
		t.Fatalf("another terminal's order: %d", status)
	}
	var cfg wire.TerminalConfig
	if e.do("T1", "GET", "/v1/terminals/T1/config", nil, &cfg); cfg.Terminal != "T1" || cfg.Policy.MaxAmount["CNY"] != 50000 {
		t.Fatalf("config %+v", cfg)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "acquirerd_requests_total") {
		t.Fatalf("metrics: %s", body)
	}
}

// TestServer_RequireClientCert: with RequireClientCert a request that did not come over
// mutual TLS is refused even when correctly signed (the TLS cases are in sync/uplink and
// cmd/acquirerd, over real TLS).
func TestServer_RequireClientCert(t *testing.T) {
	store := storeKinds[0].open(t)
	e := newEnv(t, store)
	srv := httptest.NewServer(New(store, Options{RequireClientCert: true}))
	t.Cleanup(srv.Close)
	e.srv = srv
	status, code := errorCode(e, "T1", "GET", "/v1/ping", nil)
	if status != http.StatusForbidden || code != wire.CodeForbidden {
		t.Fatalf("got %d %q, want 403 %q", status, code, wire.CodeForbidden)
	}
	if status, code := errorCode(e, "", "GET", "/v1/ping", nil); status != http.StatusUnauthorized {
		t.Fatalf("unsigned: got %d %q, want 401 first", status, code)
	}
}
