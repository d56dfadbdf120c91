package qr

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Seeds live in testdata/fuzz/FuzzDecodeTLV and testdata/fuzz/FuzzDecodeCPM (the Annex B
// examples among them); `go test` runs them as ordinary tests.

// FuzzDecodeTLV: DecodeTLV never panics, fails only with a *ParseError wrapping ErrMalformed,
// and what it decodes re-encodes to the same bytes and decodes to the same tree. The same
// holds with the CPM transparent templates kept opaque.
func FuzzDecodeTLV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzTLV(t, data, nil)
		fuzzTLV(t, data, cpmOpaque)
	})
}

func fuzzTLV(t *testing.T, data []byte, opaque func(Tag) bool) {
	objs, err := decodeTLVWith(data, opaque)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
			t.Fatalf("DecodeTLV(%X): error %v is not a malformed *ParseError", data, err)
		}
		return
	}
	enc, err := EncodeTLV(objs)
	if err != nil {
		t.Fatalf("EncodeTLV(DecodeTLV(%X)): %v", data, err)
	}
	if !bytes.Equal(enc, data) {
		t.Fatalf("EncodeTLV(DecodeTLV(x)) = %X, want x = %X", enc, data)
	}
	again, err := decodeTLVWith(enc, opaque)
	if err != nil {
		t.Fatalf("DecodeTLV(EncodeTLV(DecodeTLV(%X))): %v", data, err)
	}
	if !reflect.DeepEqual(again, objs) {
		t.Fatalf("tree changed in a round trip of %X:\n got %#v\nwant %#v", data, again, objs)
	}
	if _, err := json.Marshal(objs); err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
}

// FuzzDecodeCPM: DecodeCPM never panics, fails only with a *ParseError wrapping ErrMalformed
// or ErrRule, and a code it decodes encodes to the canonical form of the payload, which
// decodes to the same CPM. Each input is tried as a payload and, base64-encoded, as the
// binary of one, so the fuzzer explores both the text and the BER-TLV.
func FuzzDecodeCPM(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		fuzzCPM(t, s)
		fuzzCPM(t, base64.StdEncoding.EncodeToString([]byte(s)))
	})
}

func fuzzCPM(t *testing.T, payload string) {
	c, err := DecodeCPM(payload)
	if err != nil {
		var pe *ParseError
		if !errors.As(err, &pe) || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrRule)) {
			t.Fatalf("DecodeCPM(%q): error %v is not a malformed or rule *ParseError", payload, err)
		}
		return
	}
	enc, err := EncodeCPM(c)
	if err != nil {
		t.Fatalf("EncodeCPM(DecodeCPM(%q)): %v", payload, err)
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(payload), "="))
	if err != nil {
		t.Fatalf("DecodeCPM accepted %q, which is not base64: %v", payload, err)
	}
	if want := base64.StdEncoding.EncodeToString(raw); enc != want {
		t.Fatalf("EncodeCPM(DecodeCPM(%q)) = %q, want the canonical %q", payload, enc, want)
	}
	again, err := DecodeCPM(enc)
	if err != nil {
		t.Fatalf("DecodeCPM(EncodeCPM(DecodeCPM(%q))): %v", payload, err)
	}
	if !reflect.DeepEqual(again, c) {
		t.Fatalf("CPM changed in a round trip of %q:\n got %#v\nwant %#v", payload, again, c)
	}
	j, err := json.Marshal(c)
	if err != nil || !json.Valid(j) {
		t.Fatalf("json.Marshal: %s, %v", j, err)
	}
	apps, templates := c.Applications(), 0
	for _, o := range c.Objects {
		if o.Tag == cpmTagApplication {
			templates++
		}
	}
	if len(apps) != templates || templates < 1 || templates > 2 {
		t.Fatalf("%d applications for %d Application Templates", len(apps), templates)
	}
	for _, a := range apps {
		if hidden := strings.Count(a.PAN, "*"); a.AID == "" || (a.PAN != "" && (hidden < 3 || len(a.PAN)-hidden > 10)) {
			t.Fatalf("application summary %+v: no AID, or a PAN not masked", a)
		}
	}
}
