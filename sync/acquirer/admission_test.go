package acquirer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// heldEnv is an endpoint with limits whose SimLateApproval authorizations (amount …95) the
// test holds in flight until it releases them.
type heldEnv struct {
	*env
	entered chan struct{}
	release chan time.Time
}

func newHeldEnv(t *testing.T, limits Limits) *heldEnv {
	t.Helper()
	store, err := OpenSQLite(filepath.Join(t.TempDir(), "acq.db"), testMasterKey)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, store)
	h := &heldEnv{env: e, entered: make(chan struct{}, 4), release: make(chan time.Time)}
	srv := New(store, Options{Limits: limits})
	srv.simWait = func(time.Duration) <-chan time.Time {
		h.entered <- struct{}{}
		return h.release
	}
	e.srv.Config.Handler = srv
	return h
}

// hold sends a SimLateApproval authorization of terminal and returns once it is in flight
// at the endpoint; its status arrives on the channel after release.
func (h *heldEnv) hold(terminal, key string) <-chan int {
	h.t.Helper()
	done := make(chan int, 1)
	body, _ := json.Marshal(authReq(key, 1295))
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/authorizations", bytes.NewReader(body))
	if err := signing.Sign(req, terminal, testSigningKey, time.Now(), signing.NewNonce()); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	<-h.entered
	return done
}

// rawError sends a signed request and returns its status, Retry-After and error body.
func (e *env) rawError(terminal, method, path string, body any) (int, string, wire.Error) {
	e.t.Helper()
	var eb wire.ErrorBody
	code, hdr := e.do(terminal, method, path, body, &eb)
	return code, hdr.Get("Retry-After"), eb.Error
}

func TestAdmission_Global(t *testing.T) {
	h := newHeldEnv(t, Limits{MaxInFlight: 1, QueueWait: time.Millisecond})
	first := h.hold("T1", "held-1")
	code, retry, eb := h.rawError("T2", "GET", "/v1/ping", nil)
	if got, want := fmt.Sprint(code, " ", retry, " ", eb.Code), "429 1 rate_limited"; got != want {
		t.Errorf("second request while the only slot is taken: %s, want %s (%s)", got, want, eb.Message)
	}
	close(h.release)
	if got := <-first; got != http.StatusOK {
		t.Errorf("held request: %d, want 200", got)
	}
	if code, _ := h.do("T2", "GET", "/v1/ping", nil, nil); code != http.StatusOK {
		t.Errorf("after the slot came free: %d, want 200", code)
	}
	if got := scrape(t, h.env, `acquirerd_throttled_total{scope="global"}`); got != "1" {
		t.Errorf("throttled global = %q, want 1", got)
	}
}

func TestAdmission_PerTerminal(t *testing.T) {
	h := newHeldEnv(t, Limits{PerTerminal: 1})
	first := h.hold("T1", "held-1")
	code, retry, eb := h.rawError("T1", "GET", "/v1/ping", nil)
	if got, want := fmt.Sprint(code, " ", retry, " ", eb.Code), "429 1 rate_limited"; got != want {
		t.Errorf("T1's second request in flight: %s, want %s (%s)", got, want, eb.Message)
	}
	if code, _ := h.do("T2", "GET", "/v1/ping", nil, nil); code != http.StatusOK {
		t.Errorf("T2 while T1 is at its limit: %d, want 200", code)
	}
	close(h.release)
	if got := <-first; got != http.StatusOK {
		t.Errorf("held request: %d, want 200", got)
	}
	if code, _ := h.do("T1", "GET", "/v1/ping", nil, nil); code != http.StatusOK {
		t.Errorf("T1 after its request ended: %d, want 200", code)
	}
	if got := scrape(t, h.env, `acquirerd_throttled_total{scope="terminal"}`); got != "1" {
		t.Errorf("throttled terminal = %q, want 1", got)
	}
}

func TestAdmission_Sizes(t *testing.T) {
	h := newHeldEnv(t, Limits{MaxBody: 2000, MaxBatch: 2})
	big := wire.Batch{Records: chain(8, func(int) int64 { return 1225 })}
	code, _, eb := h.rawError("T1", "POST", "/v1/terminals/T1/batches", big)
	if code != http.StatusRequestEntityTooLarge || eb.Code != wire.CodeTooLarge || !strings.Contains(eb.Message, "limit of 2000 bytes") {
		t.Errorf("body above MaxBody: %d %s %q, want 413 too_large naming the limit", code, eb.Code, eb.Message)
	}
	// The same body without a length (chunked) is cut off as it is read.
	body, _ := json.Marshal(big)
	req, _ := http.NewRequest("POST", h.srv.URL+"/v1/terminals/T1/batches", bytes.NewReader(body))
	if err := signing.Sign(req, "T1", testSigningKey, time.Now(), signing.NewNonce()); err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1
	req.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body above MaxBody: %d, want 413", resp.StatusCode)
	}
	three := wire.Batch{Records: chain(3, func(int) int64 { return 1225 })}
	code, _, eb = h.rawError("T1", "POST", "/v1/terminals/T1/batches", three)
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(eb.Message, "batch has 3 records, this acquirer's limit is 2") {
		t.Errorf("batch above MaxBatch: %d %q, want 413 naming the limit", code, eb.Message)
	}
	var ok wire.BatchResponse
	if code, _ := h.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: three.Records[:2]}, &ok); code != http.StatusOK || statuses(ok) != "accepted,accepted" {
		t.Errorf("batch within the limits: %d %s, want 200 accepted,accepted", code, statuses(ok))
	}
}

func TestLimitsDefaults(t *testing.T) {
	for _, tc := range []struct {
		in   Limits
		want Limits
	}{
		{Limits{}, Limits{MaxInFlight: DefaultMaxInFlight(), QueueWait: DefaultQueueWait, PerTerminal: DefaultPerTerminal, RetryAfter: time.Second, MaxBody: signing.MaxBody, MaxBatch: wire.MaxBatch}},
		{Limits{MaxInFlight: 3, QueueWait: time.Second, PerTerminal: 1, RetryAfter: 5 * time.Second, MaxBody: 1 << 30, MaxBatch: 10_000},
			Limits{MaxInFlight: 3, QueueWait: time.Second, PerTerminal: 1, RetryAfter: 5 * time.Second, MaxBody: signing.MaxBody, MaxBatch: wire.MaxBatch}},
		{Limits{RetryAfter: time.Millisecond, MaxBody: 100, MaxBatch: 7},
			Limits{MaxInFlight: DefaultMaxInFlight(), QueueWait: DefaultQueueWait, PerTerminal: DefaultPerTerminal, RetryAfter: time.Second, MaxBody: 100, MaxBatch: 7}},
	} {
		if got := tc.in.withDefaults(); got != tc.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{time.Second, "1"}, {1500 * time.Millisecond, "2"}, {30 * time.Second, "30"}} {
		if got := retryAfterHeader(tc.d); got != tc.want {
			t.Errorf("retryAfterHeader(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestResultOf(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   string
	}{{200, "ok"}, {400, "client_error"}, {401, "client_error"}, {413, "client_error"}, {429, "rate_limited"}, {503, "server_error"}, {0, "server_error"}} {
		if got := resultOf(tc.status); got != tc.want {
			t.Errorf("resultOf(%d) = %q, want %q", tc.status, got, tc.want)
		}
	}
}

// scrape returns the value of one sample (name{labels}) on the endpoint's /metrics, or "".
func scrape(t *testing.T, e *env, sample string) string {
	t.Helper()
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}
