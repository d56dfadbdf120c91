package offline

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/posagent/posagent"
)

// Entry is the immutable part of a journal record: what the hash chain covers. State,
// attempts, errors and acknowledgements change over a record's life and are not part of it.
//
// The canonical encoding (MarshalBinary) is what both the terminal and the acquirer hash:
//
//	byte      version (1)
//	uint64    sequence            (big-endian, like every integer below)
//	int64     captured at, Unix milliseconds
//	int64     amount in minor units
//	then, each as uint32 length + bytes (UTF-8 text, except the tag):
//	id, terminal, idempotency key, reference, currency (ISO 4217 alphabetic),
//	method, scheme, credential tag (HMAC-SHA256, or empty when there is no credential)
//
// A refund (Kind refund, Parent the refunded sale's id) is encoded as version 2: the same
// fields, then kind and parent, each as uint32 length + bytes. A sale keeps version 1, so
// chains written before refunds existed verify unchanged.
//
// Fixed-width integers and length prefixes make the encoding canonical by construction:
// one entry has exactly one encoding, so the decoder can be strict (UnmarshalBinary accepts
// only what MarshalBinary produces).
type Entry struct {
	Sequence       uint64
	CapturedAt     time.Time // millisecond precision
	Amount         int64
	ID             string
	Terminal       string
	IdempotencyKey string
	Reference      string
	Currency       string
	Method         posagent.Method
	Scheme         posagent.Scheme
	CredentialTag  []byte
	Kind           posagent.Kind // empty or KindSale: a sale (version 1)
	Parent         string        // a refund's sale id
}

const (
	entryVersion = 1
	// entryVersion2 adds kind and parent (refunds).
	entryVersion2 = 2
	maxField      = 4096 // longest text field, in bytes; the decoder refuses more
)

// ErrEncoding is the sentinel of a malformed canonical encoding.
var ErrEncoding = errors.New("malformed journal entry")

// MarshalBinary returns the canonical encoding. It fails only for fields that are too long
// or not UTF-8, which Append never lets in.
func (e *Entry) MarshalBinary() ([]byte, error) {
	fields := e.fields()
	n := 1 + 8*3
	for _, f := range fields {
		n += 4 + len(f)
	}
	version := byte(entryVersion)
	if !e.isSale() {
		version = entryVersion2
		n += 8 + len(e.Kind) + len(e.Parent)
	}
	b := make([]byte, 0, n)
	b = append(b, version)
	b = binary.BigEndian.AppendUint64(b, e.Sequence)
	b = binary.BigEndian.AppendUint64(b, uint64(e.CapturedAt.UnixMilli()))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Amount))
	for i, f := range fields {
		if len(f) > maxField {
			return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrEncoding, fieldNames[i], len(f), maxField)
		}
		if i != len(fields)-1 && !utf8.ValidString(f) {
			return nil, fmt.Errorf("%w: %s is not UTF-8", ErrEncoding, fieldNames[i])
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
		b = append(b, f...)
	}
	if version == entryVersion2 {
		for _, f := range []string{string(e.Kind), e.Parent} {
			if len(f) > maxField || !utf8.ValidString(f) {
				return nil, fmt.Errorf("%w: kind or parent is too long or not UTF-8", ErrEncoding)
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		}
	}
	return b, nil
}

// isSale reports whether the entry is a sale (encoded as version 1).
func (e *Entry) isSale() bool {
	return (e.Kind == "" || e.Kind == posagent.KindSale) && e.Parent == ""
}

var fieldNames = [...]string{"id", "terminal", "idempotency key", "reference", "currency", "method", "scheme", "credential tag"}

func (e *Entry) fields() [8]string {
	return [8]string{e.ID, e.Terminal, e.IdempotencyKey, e.Reference, e.Currency, string(e.Method), string(e.Scheme), string(e.CredentialTag)}
}

// UnmarshalBinary decodes a canonical encoding, refusing anything MarshalBinary would not
// have produced: another version, truncation, trailing bytes, oversized or non-UTF-8
// fields. The error wraps ErrEncoding.
func (e *Entry) UnmarshalBinary(b []byte) error {
	if len(b) < 1+8*3 {
		return fmt.Errorf("%w: %d bytes, shorter than the fixed part", ErrEncoding, len(b))
	}
	version := b[0]
	if version != entryVersion && version != entryVersion2 {
		return fmt.Errorf("%w: version %d, want %d or %d", ErrEncoding, b[0], entryVersion, entryVersion2)
	}
	var out Entry
	out.Sequence = binary.BigEndian.Uint64(b[1:])
	out.CapturedAt = time.UnixMilli(int64(binary.BigEndian.Uint64(b[9:]))).UTC()
	out.Amount = int64(binary.BigEndian.Uint64(b[17:]))
	b = b[25:]
	var fields [8]string
	for i := range fields {
		if len(b) < 4 {
			return fmt.Errorf("%w: truncated before %s", ErrEncoding, fieldNames[i])
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if n > maxField || uint64(n) > uint64(len(b)) {
			return fmt.Errorf("%w: %s length %d out of range", ErrEncoding, fieldNames[i], n)
		}
		fields[i] = string(b[:n])
		b = b[n:]
		if i != len(fields)-1 && !utf8.ValidString(fields[i]) {
			return fmt.Errorf("%w: %s is not UTF-8", ErrEncoding, fieldNames[i])
		}
	}
	if version == entryVersion2 {
		var extra [2]string
		for i := range extra {
			if len(b) < 4 {
				return fmt.Errorf("%w: truncated before %s", ErrEncoding, [2]string{"kind", "parent"}[i])
			}
			n := binary.BigEndian.Uint32(b)
			b = b[4:]
			if n > maxField || uint64(n) > uint64(len(b)) {
				return fmt.Errorf("%w: %s length %d out of range", ErrEncoding, [2]string{"kind", "parent"}[i], n)
			}
			extra[i] = string(b[:n])
			b = b[n:]
			if !utf8.ValidString(extra[i]) {
				return fmt.Errorf("%w: kind or parent is not UTF-8", ErrEncoding)
			}
		}
		out.Kind, out.Parent = posagent.Kind(extra[0]), extra[1]
		if out.isSale() {
			return fmt.Errorf("%w: version 2 holds a sale, which is encoded as version 1", ErrEncoding)
		}
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrEncoding, len(b))
	}
	out.ID, out.Terminal, out.IdempotencyKey, out.Reference = fields[0], fields[1], fields[2], fields[3]
	out.Currency, out.Method, out.Scheme = fields[4], posagent.Method(fields[5]), posagent.Scheme(fields[6])
	if fields[7] != "" {
		out.CredentialTag = []byte(fields[7])
	}
	*e = out
	return nil
}

// GenesisHash is the prev_hash of the first record of a journal: 32 zero bytes.
var GenesisHash = make([]byte, sha256.Size)

// ChainHash is a record's hash: SHA-256 over its canonical encoding followed by the
// previous record's hash.
func ChainHash(canonical, prev []byte) []byte {
	h := sha256.New()
	h.Write(canonical)
	h.Write(prev)
	return h.Sum(nil)
}

// MaskCredential shows enough of a credential to tell two apart at the counter and no
// more: the first 6 and last 4 characters of a long code (as card numbers are masked),
// the first and last 2 of a short one, nothing of a tiny one. Long opaque payloads (an EMV
// consumer-presented code is hundreds of base64 characters) are cut to a fixed width.
func MaskCredential(c string) string {
	r := []rune(c)
	n := len(r)
	switch {
	case n == 0:
		return ""
	case n <= 4:
		return strings.Repeat("*", n)
	case n < 12:
		return string(r[:2]) + strings.Repeat("*", n-4) + string(r[n-2:])
	case n <= 32:
		return string(r[:6]) + strings.Repeat("*", n-10) + string(r[n-4:])
	}
	return string(r[:6]) + "…(" + fmt.Sprint(n) + " chars)…" + string(r[n-4:])
}
