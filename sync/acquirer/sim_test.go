package acquirer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// simEnv is an endpoint whose SimLateApproval wait the test holds and releases, on the
// store's clock, telling when each request's handler has returned.
type simEnv struct {
	*env
	clock   *fakeClock
	entered chan time.Duration // a SimLateApproval request reached its wait
	release chan time.Time     // close to end the waits
	done    chan string        // a handler returned (its route)
}

func newSimEnv(base *env) *simEnv {
	e := &simEnv{env: base, clock: newClock(), entered: make(chan time.Duration, 1), release: make(chan time.Time), done: make(chan string, 16)}
	store := base.store
	srv := New(store, Options{Now: e.clock.Now, Skew: 1000 * time.Hour, SimDelay: 8 * time.Second, SimPending: 3 * time.Second})
	srv.simWait = func(d time.Duration) <-chan time.Time {
		e.entered <- d
		return e.release
	}
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { e.done <- r.Method + " " + r.URL.Path }()
		srv.ServeHTTP(w, r)
	})
	return e
}

// send signs and sends one request from any goroutine: the status and the body.
func (e *simEnv) send(ctx context.Context, terminal, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		r = bytes.NewReader(j)
	}
	req, _ := http.NewRequestWithContext(ctx, method, e.srv.URL+path, r)
	if err := signing.Sign(req, terminal, testSigningKey, time.Now(), signing.NewNonce()); err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func (e *simEnv) status(t *testing.T, id string) wire.AuthorizationStatus {
	t.Helper()
	var st wire.AuthorizationStatus
	if code, _ := e.do("T1", "GET", "/v1/authorizations/"+id, nil, &st); code != 200 {
		t.Fatalf("status of %s: %d", id, code)
	}
	<-e.done
	return st
}

type answer struct {
	code int
	body []byte
	err  error
}

// authorizeAsync sends the authorization from a goroutine; its answer comes on the channel.
func (e *simEnv) authorizeAsync(ctx context.Context, req wire.AuthorizationRequest) chan answer {
	c := make(chan answer, 1)
	go func() {
		code, body, err := e.send(ctx, "T1", "POST", "/v1/authorizations", req)
		c <- answer{code, body, err}
	}()
	return c
}

func decision(t *testing.T, a answer) wire.AuthorizationResponse {
	t.Helper()
	var resp wire.AuthorizationResponse
	if a.err != nil || a.code != 200 || json.Unmarshal(a.body, &resp) != nil {
		t.Fatalf("authorization: %d %s %v", a.code, a.body, a.err)
	}
	return resp
}

// TestServer_LateApproval: an authorization decided after the client's timeout
// (SimLateApproval) is not_found while it is held, approved once stored, also when the
// client has gone; a reversal sent while it is held wins.
func TestServer_LateApproval(t *testing.T) {
	eachStore(t, func(t *testing.T, base *env) {
		e := newSimEnv(base)
		req := authReq("late1", 1200+SimLateApproval)
		answered := e.authorizeAsync(t.Context(), req)
		if d := <-e.entered; d != 8*time.Second {
			t.Fatalf("held for %v, want Options.SimDelay", d)
		}
		if st := e.status(t, req.ID); st.State != wire.StatusNotFound {
			t.Fatalf("status while held: %+v, want not_found", st)
		}
		e.release <- time.Time{}
		if resp := decision(t, <-answered); resp.Decision != wire.Approved {
			t.Fatalf("late answer: %+v", resp)
		}
		<-e.done
		if st := e.status(t, req.ID); st.State != "approved" {
			t.Fatalf("status after: %+v, want approved", st)
		}

		// The client gives up while it is held: the approval is stored all the same.
		gone := authReq("late2", 1200+SimLateApproval)
		ctx, cancel := context.WithCancel(t.Context())
		answered = e.authorizeAsync(ctx, gone)
		<-e.entered
		cancel()
		if a := <-answered; !errors.Is(a.err, context.Canceled) {
			t.Fatalf("the canceled client got %+v", a)
		}
		e.release <- time.Time{}
		<-e.done
		if st := e.status(t, gone.ID); st.State != "approved" {
			t.Fatalf("status after the client left: %+v, want approved", st)
		}

		// A reversal while it is held leaves a tombstone: the authorization is refused.
		rev := authReq("late3", 1200+SimLateApproval)
		answered = e.authorizeAsync(t.Context(), rev)
		<-e.entered
		var r wire.ReversalResponse
		if code, _ := e.do("T1", "POST", "/v1/authorizations/"+rev.ID+"/reversal", reversalOf(rev), &r); code != 200 || r.Previous != wire.StatusNotFound {
			t.Fatalf("reversal while held: %d %+v", code, r)
		}
		<-e.done
		e.release <- time.Time{}
		if resp := decision(t, <-answered); resp.Decision != wire.Reversed || resp.Reason != ReasonTombstone {
			t.Fatalf("held authorization after the reversal: %+v, want reversed", resp)
		}
		<-e.done
		if st := e.status(t, rev.ID); st.State != "reversed" {
			t.Fatalf("status: %+v, want reversed", st)
		}
	})
}

// TestServer_SimOutcomes: pending_customer resolving on the clock, the 502 after a stored
// approval, and the reversal route's checks, through real HTTP.
func TestServer_SimOutcomes(t *testing.T) {
	eachStore(t, func(t *testing.T, base *env) {
		e := newSimEnv(base)
		post := func(req wire.AuthorizationRequest) (int, wire.AuthorizationResponse) {
			t.Helper()
			var resp wire.AuthorizationResponse
			code, _ := e.do("T1", "POST", "/v1/authorizations", req, &resp)
			<-e.done
			return code, resp
		}
		for _, tt := range []struct {
			amount int64
			final  string
		}{{1200 + SimPendingApprove, "approved"}, {1200 + SimPendingDecline, "declined"}, {1200 + SimPendingForever, "pending_customer"}} {
			req := authReq(fmt.Sprintf("p%d", tt.amount), tt.amount)
			if code, resp := post(req); code != 200 || resp.Decision != wire.PendingCustomer {
				t.Fatalf("%d: %d %+v, want pending_customer", tt.amount, code, resp)
			}
			if st := e.status(t, req.ID); st.State != "pending_customer" {
				t.Fatalf("%d: status %+v", tt.amount, st)
			}
			e.clock.Advance(3 * time.Second)
			if st := e.status(t, req.ID); st.State != tt.final {
				t.Fatalf("%d: status after SimPending: %+v, want %s", tt.amount, st, tt.final)
			}
			if _, resp := post(req); string(resp.Decision) != tt.final {
				t.Fatalf("%d: the same POST again: %+v, want %s", tt.amount, resp, tt.final)
			}
		}

		bad := authReq("gw", 1200+SimBadGateway)
		for range 2 {
			var eb wire.ErrorBody
			if code, _ := e.do("T1", "POST", "/v1/authorizations", bad, &eb); code != http.StatusBadGateway {
				t.Fatalf("SimBadGateway: %d %+v, want 502", code, eb)
			}
			<-e.done
		}
		if st := e.status(t, bad.ID); st.State != "approved" {
			t.Fatalf("after the 502: %+v, want approved", st)
		}

		ok := authReq("r1", 1250)
		post(ok)
		mismatch := reversalOf(ok)
		mismatch.ID = "id-other"
		wrong := reversalOf(ok)
		wrong.Amount = 1
		for _, tt := range []struct {
			terminal, path string
			body           any
			code           int
		}{
			{"T1", "/v1/authorizations/" + ok.ID + "/reversal", mismatch, 422},
			{"T1", "/v1/authorizations/" + ok.ID + "/reversal", `{"id": "x", "bogus": 1}`, 400},
			{"T1", "/v1/authorizations/" + ok.ID + "/reversal", wire.ReversalRequest{ID: ok.ID, Sequence: 1, IdempotencyKey: "k", Amount: 0, Currency: "CNY"}, 422},
			{"T1", "/v1/authorizations/" + ok.ID + "/reversal", wrong, 409},
			{"T1", "/v1/authorizations/" + strings.Repeat("x", 65), nil, 400},
		} {
			var eb wire.ErrorBody
			method := "POST"
			if tt.body == nil {
				method = "GET"
			}
			if code, _ := e.do(tt.terminal, method, tt.path, tt.body, &eb); code != tt.code {
				t.Fatalf("%s %s %v: %d %+v, want %d", method, tt.path, tt.body, code, eb, tt.code)
			}
			<-e.done
		}
		// Another terminal's reversal of the same sale id does not touch it.
		var r wire.ReversalResponse
		if code, _ := e.do("T2", "POST", "/v1/authorizations/"+ok.ID+"/reversal", reversalOf(ok), &r); code != 200 || r.Previous != wire.StatusNotFound {
			t.Fatalf("T2's reversal: %d %+v", code, r)
		}
		<-e.done
		if st := e.status(t, ok.ID); st.State != "approved" {
			t.Fatalf("T1's sale after T2's reversal: %+v", st)
		}
	})
}
