package device

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeJSON feeds the local API's request decoding arbitrary bodies: it must never
// panic, must refuse what is not one strict JSON object of the type, and what it accepts
// must validate or be refused with an API error (never anything else).
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"amount": 1250, "currency": "CNY", "reference": "R1", "idempotency_key": "k1", "mode": "scan"}`,
		`{"amount": 1, "idempotency_key": "k", "mode": "qr", "reference": "O-1"}`,
		`{"amount": "12.50"}`, `{"amount": 1e400}`, `{"tip": 1}`, `{} {}`, ``, `[`, `{"lines": ["a", "b"]}`,
		`{"amount": -1, "idempotency_key": "\u0000"}`, `{"mode": "qr", "reference": "最佳运输"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req PaymentRequest
		err := DecodeJSON(bytes.NewReader(body), 4096, &req)
		var ae *apiError
		if err != nil {
			if !errors.As(err, &ae) || ae.Status < 400 || ae.Status > 499 || ae.Message == "" {
				t.Fatalf("decode error %v is not a 4xx API error", err)
			}
			return
		}
		if _, err := req.validate("CNY"); err != nil {
			if !errors.As(err, &ae) || ae.Status != 422 {
				t.Fatalf("validate error %v is not a 422", err)
			}
			return
		}
		if req.Amount <= 0 || req.IdempotencyKey == "" || (req.Mode != ModeScan && req.Mode != ModeQR) {
			t.Fatalf("accepted an invalid request %+v", req)
		}
		var d DisplayRequest
		_ = DecodeJSON(bytes.NewReader(body), 4096, &d)
	})
}
