package acquirer

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// FuzzServer_Decode sends correctly signed requests with arbitrary bodies to the batch and
// authorization endpoints: the answer is always a 2xx or a 4xx with a JSON error, never a
// 5xx or a panic, but for the simulated outcomes: a 503 or 502 that says "simulated", and
// the dropped connection of SimLostAnswer (http.ErrAbortHandler without a hijackable
// connection).
func FuzzServer_Decode(f *testing.F) {
	f.Add(true, []byte(mustJSON(wire.Batch{Records: chain(2, func(int) int64 { return 100 })})))
	f.Add(false, []byte(mustJSON(authReq("k", 100))))
	f.Add(true, []byte(`{"records":[{"sequence":-1}]}`))
	f.Add(false, []byte(`{"amount":1e309}`))
	f.Add(true, []byte(`[]`))
	for _, sim := range []int64{SimLostAnswer, SimLateApproval, SimPendingApprove, SimBadGateway} {
		f.Add(false, []byte(mustJSON(authReq("sim", 1200+sim))))
	}
	store, err := OpenSQLite(filepath.Join(f.TempDir(), "fuzz.db"), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	if err := store.AddTerminal(f.Context(), "T1", testSecret, wire.Policy{}); err != nil {
		f.Fatal(err)
	}
	srv := New(store, Options{SimTimeout: time.Millisecond, SimDelay: time.Millisecond, SimPending: time.Millisecond})
	f.Fuzz(func(t *testing.T, batch bool, body []byte) {
		path := "/v1/authorizations"
		if batch {
			path = "/v1/terminals/T1/batches"
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		if err := signing.Sign(req, "T1", testSigningKey, time.Now(), signing.NewNonce()); err != nil {
			return
		}
		w := httptest.NewRecorder()
		dropped := func() (dropped bool) {
			defer func() {
				if r := recover(); r != nil {
					if r != http.ErrAbortHandler {
						panic(r)
					}
					dropped = true
				}
			}()
			srv.ServeHTTP(w, req)
			return false
		}()
		if dropped {
			if a, err := wire.Decode[wire.AuthorizationRequest](bytes.NewReader(body)); batch || err != nil || a.Amount%100 != SimLostAnswer {
				t.Fatalf("connection dropped for %q", body)
			}
			return
		}
		if w.Code >= 500 && w.Code != 503 && w.Code != 502 {
			t.Fatalf("status %d for %q: %s", w.Code, body, w.Body)
		}
		if w.Code >= 500 && !bytes.Contains(w.Body.Bytes(), []byte("simulated")) {
			t.Fatalf("503 for %q: %s", body, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %s", w.Body)
		}
	})
}
