package offline

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

func testEntry() Entry {
	return Entry{
		Sequence: 42, CapturedAt: time.Date(2025, 3, 1, 12, 0, 0, 123e6, time.UTC), Amount: 1250,
		ID: "0195f3c2-7b1a-7cc0-8a6e-3b1f2f9d1c11", Terminal: "T1", IdempotencyKey: "k-1", Reference: "ORDER-1",
		Currency: "CNY", Method: posagent.MethodWalletCode, Scheme: posagent.SchemeWeChatPay, CredentialTag: bytes.Repeat([]byte{9}, 32),
	}
}

func TestEntry_RoundTrip(t *testing.T) {
	e := testEntry()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got Entry
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	b2, _ := got.MarshalBinary()
	if !bytes.Equal(b, b2) || !got.CapturedAt.Equal(e.CapturedAt) || got.ID != e.ID {
		t.Errorf("round trip changed the entry: %+v", got)
	}
	for _, bad := range [][]byte{nil, b[:10], b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{2}, b[1:]...)} {
		if err := new(Entry).UnmarshalBinary(bad); !errors.Is(err, ErrEncoding) {
			t.Errorf("UnmarshalBinary(%d bytes) = %v, want ErrEncoding", len(bad), err)
		}
	}
}

// The hash of a fixed entry is pinned: the acquirer computes the same, so changing the
// encoding is a protocol change.
func TestChainHash_Pinned(t *testing.T) {
	e := testEntry()
	b, _ := e.MarshalBinary()
	h := ChainHash(b, GenesisHash)
	got := string(hexString(h))
	const want = "bd60ebecef91659685bc53253b9c65f10a07bac761a7397510026fb6814c0e4f"
	if got != want {
		t.Errorf("hash %s, want %s", got, want)
	}
}

func hexString(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func TestMaskCredential(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""}, {"123", "***"}, {"12345678", "12****78"}, {"134567890123456789", "134567********6789"},
		{strings.Repeat("A", 300), "AAAAAA…(300 chars)…AAAA"},
	}
	for _, tt := range tests {
		if got := MaskCredential(tt.in); got != tt.want {
			t.Errorf("MaskCredential(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if _, err := LoadKey(path, false); err == nil {
		t.Error("missing key loaded without create")
	}
	k1, err := LoadKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %v", fi.Mode().Perm())
	}
	k2, err := LoadKey(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1.chain, k2.chain) {
		t.Error("the created key does not load back the same")
	}
	if s := k1.String(); s != "[redacted]" {
		t.Errorf("key prints as %q", s)
	}
	os.Chmod(path, 0o644)
	if _, err := LoadKey(path, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key: %v", err)
	}
	raw := filepath.Join(dir, "raw")
	os.WriteFile(raw, bytes.Repeat([]byte{1}, 32), 0o600)
	if _, err := LoadKey(raw, false); err != nil {
		t.Errorf("raw key: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("too short\n"), 0o600)
	if _, err := LoadKey(bad, false); err == nil || strings.Contains(err.Error(), "too short") {
		t.Errorf("bad key: %v (must not quote the file)", err)
	}
}

func TestKey_SealBoundToID(t *testing.T) {
	k := testKey(t)
	sealed, err := k.seal("id-1", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := k.open("id-1", sealed); err != nil || string(pt) != "secret" {
		t.Errorf("open = %q, %v", pt, err)
	}
	if _, err := k.open("id-2", sealed); err == nil {
		t.Error("a credential opened under another record's id")
	}
}

func FuzzEntryDecode(f *testing.F) {
	e := testEntry()
	b, _ := e.MarshalBinary()
	f.Add(b)
	f.Add([]byte{1})
	f.Add(append([]byte{1}, make([]byte, 24+32)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Entry
		if err := e.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrEncoding) {
				t.Fatalf("error %v does not wrap ErrEncoding", err)
			}
			return
		}
		again, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("not canonical: %x decodes and encodes to %x", data, again)
		}
	})
}

func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{
		"methods: [emv-cpm]\nmax_count: 5\nmax_age: 72h\nlimits:\n  CNY: {per_transaction: 500.00, outstanding: 5000}\n",
		"limits: {JPY: {per_transaction: 1, outstanding: 1}}", "", "[]", "methods: x", "max_age: -1h", "limits: {CNY: {}}",
		"&a [*a]", "max_count: 99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy([]byte(s))
		if err != nil {
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Fatalf("error %v is not ErrInvalidInput", err)
			}
			return
		}
		for code, l := range p.Limits {
			if l.PerTransaction < 0 || l.Outstanding < l.PerTransaction {
				t.Fatalf("limits %s %+v accepted", code, l)
			}
		}
		if p.MaxCount < 0 || p.MaxAge < 0 {
			t.Fatalf("negative limits accepted: %+v", p)
		}
		// Whatever parsed must check without panicking.
		cur := posagent.Currency{Code: "CNY", Numeric: "156", Minor: 2}
		p.Check(posagent.MethodEMVCPM, posagent.Amount{Minor: 1 << 62, Currency: cur},
			Outstanding{Amounts: map[string]int64{"CNY": 1 << 62}, Count: 1}, time.Now())
	})
}
