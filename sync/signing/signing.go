// Package signing authenticates the terminal's requests to the acquirer: an HMAC-SHA256
// over the method, the path with its query, a timestamp, a nonce and the SHA-256 of the
// body, keyed with the terminal's provisioned secret.
//
// A signed request carries four headers:
//
//	X-Posagent-Terminal:  the terminal ID
//	X-Posagent-Timestamp: Unix seconds
//	X-Posagent-Nonce:     32 hex digits, never reused by the terminal
//	Authorization:        POSAGENT-HMAC-SHA256 Signature=<base64>
//
// and the string signed is
//
//	POSAGENT-HMAC-SHA256 \n METHOD \n /path?query \n timestamp \n nonce \n hex(sha256(body)) \n terminal
//
// The verifier rejects a missing or malformed header, an unknown terminal, a timestamp
// outside the skew window, a nonce seen before within the window (replay) and a wrong
// signature, each with its own sentinel, and compares signatures in constant time.
package signing

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names and the scheme.
const (
	HeaderTerminal  = "X-Posagent-Terminal"
	HeaderTimestamp = "X-Posagent-Timestamp"
	HeaderNonce     = "X-Posagent-Nonce"
	Scheme          = "POSAGENT-HMAC-SHA256"
)

// MaxBody bounds the body the verifier reads (a batch of records stays well below).
const MaxBody = 4 << 20

// DefaultSkew is how far a request's timestamp may be from the server's clock.
const DefaultSkew = 5 * time.Minute

// Sentinels, one per reason a request is refused; the acquirer maps them to error codes.
var (
	ErrMissing   = errors.New("request is not signed")
	ErrMalformed = errors.New("signature headers are malformed")
	ErrUnknown   = errors.New("unknown terminal")
	ErrStale     = errors.New("timestamp outside the allowed clock skew")
	ErrReplay    = errors.New("nonce already used")
	ErrSignature = errors.New("signature does not match")
	ErrTooLarge  = errors.New("body too large")
)

// Sign adds the signature headers to req for terminal, keyed with secret, reading (and
// restoring) its body. now and nonce are the caller's so that retries can re-sign with a
// fresh nonce; use NewNonce.
func Sign(req *http.Request, terminal string, secret []byte, now time.Time, nonce string) error {
	body, err := readBody(req)
	if err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	mac := compute(secret, req.Method, requestPath(req), ts, nonce, body, terminal)
	req.Header.Set(HeaderTerminal, terminal)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set("Authorization", Scheme+" Signature="+base64.StdEncoding.EncodeToString(mac))
	return nil
}

// NewNonce returns 16 random bytes as 32 hex digits.
func NewNonce() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("signing: no randomness: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Keys finds a terminal's secret. It returns ErrUnknown (wrapped or not) for a terminal it
// does not know.
type Keys interface {
	Secret(ctx context.Context, terminal string) ([]byte, error)
}

// PreviousKeys is a Keys that also knows a terminal's previous secret while a rotation's
// grace period lasts: a request that the current secret does not verify is tried with it.
// PreviousSecret returns an error when there is none.
type PreviousKeys interface {
	Keys
	PreviousSecret(ctx context.Context, terminal string) ([]byte, error)
}

// Nonces remembers nonces for the skew window. Seen records (terminal, nonce) and reports
// whether it was already recorded; entries older than expires may be forgotten. It must be
// atomic across the acquirer's nodes (the database does it with a unique key).
type Nonces interface {
	Seen(ctx context.Context, terminal, nonce string, expires time.Time) (bool, error)
}

// Verifier checks signed requests.
type Verifier struct {
	Keys   Keys
	Nonces Nonces
	Skew   time.Duration    // DefaultSkew when zero
	Now    func() time.Time // time.Now when nil
}

// Verify authenticates req and returns the terminal ID and the body it read (req.Body is
// restored for the handler). Errors wrap one of the sentinels.
func (v *Verifier) Verify(req *http.Request) (terminal string, body []byte, err error) {
	terminal = req.Header.Get(HeaderTerminal)
	ts, nonce, auth := req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderNonce), req.Header.Get("Authorization")
	if terminal == "" && ts == "" && nonce == "" && auth == "" {
		return "", nil, ErrMissing
	}
	sig, ok := strings.CutPrefix(auth, Scheme+" Signature=")
	if !ok || terminal == "" || len(terminal) > 64 || !validNonce(nonce) {
		return "", nil, fmt.Errorf("%w: need %s, %s (unix seconds), %s (32 hex digits) and Authorization: %s Signature=…",
			ErrMalformed, HeaderTerminal, HeaderTimestamp, HeaderNonce, Scheme)
	}
	mac, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(mac) != sha256.Size {
		return "", nil, fmt.Errorf("%w: signature is not base64 of 32 bytes", ErrMalformed)
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "", nil, fmt.Errorf("%w: timestamp %q is not unix seconds", ErrMalformed, ts)
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.Skew
	if skew == 0 {
		skew = DefaultSkew
	}
	at, n := time.Unix(secs, 0), now()
	if d := n.Sub(at); d > skew || d < -skew {
		return "", nil, fmt.Errorf("%w: request time %s, server time %s (window ±%s)", ErrStale,
			at.UTC().Format(time.RFC3339), n.UTC().Format(time.RFC3339), skew)
	}
	body, err = readBody(req)
	if err != nil {
		return "", nil, err
	}
	secret, err := v.Keys.Secret(req.Context(), terminal)
	if err != nil {
		return "", nil, err
	}
	want := compute(secret, req.Method, requestPath(req), ts, nonce, body, terminal)
	if !hmac.Equal(mac, want) {
		prev, ok := v.Keys.(PreviousKeys)
		if !ok {
			return "", nil, ErrSignature
		}
		old, err := prev.PreviousSecret(req.Context(), terminal)
		if err != nil || !hmac.Equal(mac, compute(old, req.Method, requestPath(req), ts, nonce, body, terminal)) {
			return "", nil, ErrSignature
		}
	}
	// Only a correctly signed request may consume a nonce, or anyone could burn them.
	seen, err := v.Nonces.Seen(req.Context(), terminal, nonce, at.Add(skew))
	if err != nil {
		return "", nil, fmt.Errorf("check nonce: %w", err)
	}
	if seen {
		return "", nil, ErrReplay
	}
	return terminal, body, nil
}

func validNonce(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func requestPath(req *http.Request) string {
	p := req.URL.EscapedPath()
	if req.URL.RawQuery != "" {
		p += "?" + req.URL.RawQuery
	}
	return p
}

func compute(secret []byte, method, path, ts, nonce string, body []byte, terminal string) []byte {
	digest := sha256.Sum256(body)
	h := hmac.New(sha256.New, secret)
	for _, part := range []string{Scheme, method, path, ts, nonce, hex.EncodeToString(digest[:]), terminal} {
		io.WriteString(h, part)
		h.Write([]byte{'\n'})
	}
	return h.Sum(nil)
}

// readBody reads the whole body, at most MaxBody bytes, and puts it back on the request.
func readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, MaxBody+1))
	req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > MaxBody {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, MaxBody)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}
