package signing

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var (
	secret = []byte("0123456789abcdef0123456789abcdef")
	t0     = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
)

func newVerifier(now time.Time) *Verifier {
	clock := func() time.Time { return now }
	return &Verifier{Keys: StaticKeys{"T1": secret}, Nonces: &MemoryNonces{Now: clock}, Now: clock}
}

func signed(t *testing.T, method, target, body string, at time.Time, nonce string) *http.Request {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if err := Sign(req, "T1", secret, at, nonce); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestVerifier_Verify(t *testing.T) {
	nonce := NewNonce()
	tests := []struct {
		name string
		req  func() *http.Request
		at   time.Time
		want error
	}{
		{"valid", func() *http.Request { return signed(t, "POST", "/v1/terminals/T1/batches", `{"a":1}`, t0, nonce) }, t0, nil},
		{"valid with query", func() *http.Request { return signed(t, "GET", "/v1/terminals/T1/results?after=5", "", t0, nonce) }, t0, nil},
		{"clock skew inside window", func() *http.Request { return signed(t, "GET", "/v1/ping", "", t0, nonce) }, t0.Add(4 * time.Minute), nil},
		{"stale", func() *http.Request { return signed(t, "GET", "/v1/ping", "", t0, nonce) }, t0.Add(6 * time.Minute), ErrStale},
		{"from the future", func() *http.Request { return signed(t, "GET", "/v1/ping", "", t0.Add(10*time.Minute), nonce) }, t0, ErrStale},
		{"body changed", func() *http.Request {
			r := signed(t, "POST", "/v1/authorizations", `{"amount":100}`, t0, nonce)
			r.Body = httptest.NewRequest("POST", "/", strings.NewReader(`{"amount":900}`)).Body
			return r
		}, t0, ErrSignature},
		{"path changed", func() *http.Request {
			r := signed(t, "GET", "/v1/terminals/T1/config", "", t0, nonce)
			r.URL.Path = "/v1/terminals/T2/config"
			return r
		}, t0, ErrSignature},
		{"query changed", func() *http.Request {
			r := signed(t, "GET", "/v1/terminals/T1/results?after=5", "", t0, nonce)
			r.URL.RawQuery = "after=0"
			return r
		}, t0, ErrSignature},
		{"method changed", func() *http.Request {
			r := signed(t, "GET", "/v1/ping", "", t0, nonce)
			r.Method = "DELETE"
			return r
		}, t0, ErrSignature},
		{"terminal changed", func() *http.Request {
			r := signed(t, "GET", "/v1/ping", "", t0, nonce)
			r.Header.Set(HeaderTerminal, "T9")
			return r
		}, t0, ErrUnknown},
		{"wrong secret", func() *http.Request {
			r := httptest.NewRequest("GET", "/v1/ping", nil)
			Sign(r, "T1", []byte("not the secret"), t0, nonce)
			return r
		}, t0, ErrSignature},
		{"unsigned", func() *http.Request { return httptest.NewRequest("GET", "/v1/ping", nil) }, t0, ErrMissing},
		{"short nonce", func() *http.Request {
			r := signed(t, "GET", "/v1/ping", "", t0, nonce)
			r.Header.Set(HeaderNonce, "abc")
			return r
		}, t0, ErrMalformed},
		{"bad base64", func() *http.Request {
			r := signed(t, "GET", "/v1/ping", "", t0, nonce)
			r.Header.Set("Authorization", Scheme+" Signature=!!!")
			return r
		}, t0, ErrMalformed},
		{"timestamp not a number", func() *http.Request {
			r := signed(t, "GET", "/v1/ping", "", t0, nonce)
			r.Header.Set(HeaderTimestamp, "yesterday")
			return r
		}, t0, ErrMalformed},
		{"body too large", func() *http.Request {
			r := signed(t, "POST", "/v1/terminals/T1/batches", "{}", t0, nonce)
			r.Body = io.NopCloser(strings.NewReader(strings.Repeat("x", MaxBody+1)))
			return r
		}, t0, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(tt.at)
			term, _, err := v.Verify(tt.req())
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if tt.want == nil && term != "T1" {
				t.Fatalf("terminal = %q, want T1", term)
			}
		})
	}
}

func TestVerifier_Replay(t *testing.T) {
	v := newVerifier(t0)
	nonce := NewNonce()
	if _, _, err := v.Verify(signed(t, "POST", "/v1/authorizations", `{}`, t0, nonce)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Verify(signed(t, "POST", "/v1/authorizations", `{}`, t0, nonce)); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: error = %v, want ErrReplay", err)
	}
	// A forged request with a fresh nonce must not consume it.
	fresh := NewNonce()
	forged := httptest.NewRequest("GET", "/v1/ping", nil)
	Sign(forged, "T1", []byte("wrong"), t0, fresh)
	if _, _, err := v.Verify(forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged: %v", err)
	}
	if _, _, err := v.Verify(signed(t, "GET", "/v1/ping", "", t0, fresh)); err != nil {
		t.Fatalf("a forgery burned the nonce: %v", err)
	}
}

func TestVerifier_BodyRestored(t *testing.T) {
	v := newVerifier(t0)
	req := signed(t, "POST", "/v1/authorizations", `{"amount":1}`, t0, NewNonce())
	_, body, err := v.Verify(req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := io.ReadAll(req.Body)
	if err != nil || string(again) != string(body) || string(body) != `{"amount":1}` {
		t.Fatalf("body %q, re-read %q (%v)", body, again, err)
	}
}

// FuzzVerify: arbitrary headers and bodies never panic and never authenticate.
func FuzzVerify(f *testing.F) {
	f.Add("T1", "1795262400", "00112233445566778899aabbccddeeff", Scheme+" Signature=AAAA", "GET", "/v1/ping", []byte(""))
	f.Add("", "", "", "", "POST", "/v1/authorizations", []byte(`{"amount":1}`))
	f.Fuzz(func(t *testing.T, terminal, ts, nonce, auth, method, path string, body []byte) {
		req, err := http.NewRequest("GET", "http://x/", strings.NewReader(string(body)))
		if err != nil {
			return
		}
		req.Method = method
		req.URL.Path = path
		req.Header.Set(HeaderTerminal, terminal)
		req.Header.Set(HeaderTimestamp, ts)
		req.Header.Set(HeaderNonce, nonce)
		req.Header.Set("Authorization", auth)
		v := newVerifier(t0)
		if _, _, err := v.Verify(req); err == nil {
			t.Fatalf("unsigned fuzz input authenticated: %q %q %q %q", terminal, ts, nonce, auth)
		}
	})
}
