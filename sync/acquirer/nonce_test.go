package acquirer

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// TestServer_ReplayDeferred: a batch and an authorization record their nonce in the
// transaction that stores them; sent again with the same nonce (a replay), they are
// refused 401 replay and nothing is stored twice; the same body with a fresh nonce is an
// idempotent retry.
func TestServer_ReplayDeferred(t *testing.T) { eachStore(t, testServerReplayDeferred) }

func testServerReplayDeferred(t *testing.T, e *env) {
	send := func(path string, body any, nonce string) (int, wire.ErrorBody) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", e.srv.URL+path, bytes.NewReader(j))
		if err := signing.Sign(req, "T1", testSigningKey, time.Now(), nonce); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var eb wire.ErrorBody
		json.Unmarshal(data, &eb)
		return resp.StatusCode, eb
	}
	batch := wire.Batch{Records: chain(2, func(int) int64 { return 1225 })}
	auth := authReq("replay-1", 1250)
	for _, tc := range []struct {
		path string
		body any
	}{{"/v1/terminals/T1/batches", batch}, {"/v1/authorizations", auth}} {
		nonce := signing.NewNonce()
		if code, eb := send(tc.path, tc.body, nonce); code != http.StatusOK {
			t.Fatalf("%s: %d %+v, want 200", tc.path, code, eb)
		}
		code, eb := send(tc.path, tc.body, nonce)
		if got, want := [2]any{code, eb.Error.Code}, [2]any{http.StatusUnauthorized, wire.CodeReplay}; got != want {
			t.Errorf("%s replayed: %v, want %v", tc.path, got, want)
		}
		// The same body with a fresh nonce is an idempotent retry: answered as before.
		if code, eb := send(tc.path, tc.body, signing.NewNonce()); code != http.StatusOK {
			t.Errorf("%s retried with a fresh nonce: %d %+v, want 200", tc.path, code, eb)
		}
	}
	var n int
	err := e.store.Ledger(t.Context(), "T1", func(wire.LedgerEntry) error { n++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("ledger holds %d sales, want 3 (two records, one authorization)", n)
	}
}
