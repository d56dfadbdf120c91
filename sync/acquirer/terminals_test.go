package acquirer

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
)

// pingWith sends GET /v1/ping signed by terminal with key and returns the status and the
// error body.
func pingWith(t *testing.T, e *env, terminal string, key []byte) (int, wire.Error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/ping", nil)
	if err := signing.Sign(req, terminal, key, time.Now(), signing.NewNonce()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb wire.ErrorBody
	if resp.StatusCode != http.StatusOK {
		if err := json.Unmarshal(data, &eb); err != nil {
			t.Fatalf("%d %s: %v", resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode, eb.Error
}

func TestTerminals_RotateAndRevoke(t *testing.T) {
	eachStore(t, func(t *testing.T, e *env) {
		ctx := t.Context()
		var mu sync.Mutex
		now := time.Now()
		setNow(e.store, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
		admin := e.store.(TerminalAdmin)

		newSecret := bytes.Repeat([]byte{0x42}, 32)
		if err := admin.RotateTerminal(ctx, "T1", newSecret, time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, err := e.store.ProvisionedSecret(ctx, "T1"); err != nil || !bytes.Equal(got, newSecret) {
			t.Fatalf("provisioned secret after rotation: %x %v", got, err)
		}
		if status, _ := pingWith(t, e, "T1", signingKey(newSecret)); status != http.StatusOK {
			t.Fatalf("new secret: %d", status)
		}
		if status, _ := pingWith(t, e, "T1", testSigningKey); status != http.StatusOK {
			t.Fatalf("old secret within the grace period: %d", status)
		}
		advance(time.Hour)
		if status, ee := pingWith(t, e, "T1", testSigningKey); status != http.StatusUnauthorized || ee.Code != wire.CodeBadSignature {
			t.Fatalf("old secret after the grace period: %d %+v", status, ee)
		}
		if status, _ := pingWith(t, e, "T1", signingKey(newSecret)); status != http.StatusOK {
			t.Fatalf("new secret after the grace period: %d", status)
		}

		if err := admin.RevokeTerminal(ctx, "T2"); err != nil {
			t.Fatal(err)
		}
		if err := admin.RevokeTerminal(ctx, "T2"); err != nil {
			t.Fatalf("revoke twice: %v", err)
		}
		status, ee := pingWith(t, e, "T2", testSigningKey)
		if status != http.StatusUnauthorized || ee.Code != wire.CodeUnknown ||
			!strings.Contains(ee.Message, "revoked") || !strings.Contains(ee.Message, "posagent provision") {
			t.Fatalf("revoked terminal: %d %+v, want 401 with a hint", status, ee)
		}
		if _, err := e.store.Secret(ctx, "T2"); !errors.Is(err, ErrRevoked) || !errors.Is(err, signing.ErrUnknown) {
			t.Fatalf("secret of a revoked terminal: %v", err)
		}
		if err := admin.RotateTerminal(ctx, "T2", newSecret, time.Hour); !errors.Is(err, ErrRevoked) {
			t.Fatalf("rotate a revoked terminal: %v, want ErrRevoked", err)
		}
		if err := admin.RotateTerminal(ctx, "T9", newSecret, time.Hour); !errors.Is(err, ErrNotFound) {
			t.Fatalf("rotate an unknown terminal: %v, want ErrNotFound", err)
		}
		if err := admin.RevokeTerminal(ctx, "T9"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("revoke an unknown terminal: %v, want ErrNotFound", err)
		}

		list, err := admin.ListTerminals(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("ls: %+v %v", list, err)
		}
		if list[0].ID != "T1" || list[0].CreatedAt.IsZero() || !list[0].RevokedAt.IsZero() || list[0].GraceUntil.IsZero() {
			t.Errorf("T1: %+v", list[0])
		}
		if list[1].ID != "T2" || list[1].RevokedAt.IsZero() {
			t.Errorf("T2: %+v", list[1])
		}
	})
}
