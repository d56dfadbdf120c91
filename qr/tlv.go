package qr

import (
	"bytes"
	"fmt"
	"strings"
)

// BER-TLV, as EMV uses it (EMV Book 3 Annex B, ISO/IEC 8825-1) and as EMV QRCPS
// consumer-presented codes carry it.
//
// The codec is strict, so that a data object has exactly one encoding and
// EncodeTLV(DecodeTLV(b)) == b:
//   - A tag is 1 to 4 bytes: when the low five bits of the first byte are all set, more bytes
//     follow, each with bit 8 set except the last. A first byte of 00 is refused (EMV allows 00
//     padding between objects on a card; a QR code has no reason to carry it).
//   - A length is short form (00–7F) or long form 81, 82 or 83 followed by that many bytes.
//     The indefinite form (80) and longer length fields are refused, and so is a long form
//     where the short form (or a shorter long form) would do: EMV Book 3 B2 codes lengths up
//     to 127 on one byte and up to 255 on two.
//   - A tag with the constructed bit (20 in the first byte) holds a sequence of data objects,
//     decoded recursively up to MaxTLVDepth levels.
//   - The input is at most MaxPayload bytes, and must be consumed exactly.

// MaxTLVDepth is how many levels of data objects DecodeTLV and EncodeTLV accept: top-level
// objects are level 1, the objects inside a top-level template are level 2, and so on.
const MaxTLVDepth = 8

// maxTagBytes bounds the length of a tag; EMV uses at most 3 ('DF8101' in the kernels).
const maxTagBytes = 4

// Tag is a BER-TLV tag: its encoded bytes read as a big-endian integer, so the two-byte
// tag 9F 26 is Tag(0x9F26). Its String form is the uppercase hex of those bytes ("9F26").
type Tag uint32

// Bytes returns the tag's encoding: one to four bytes, the first never zero.
func (t Tag) Bytes() []byte {
	var b []byte
	for shift := 24; shift >= 0; shift -= 8 {
		if c := byte(t >> shift); c != 0 || len(b) > 0 {
			b = append(b, c)
		}
	}
	return b
}

// String returns the tag as uppercase hex, two digits per byte: "85", "5F20", "9F26".
func (t Tag) String() string { return fmt.Sprintf("%X", t.Bytes()) }

// Constructed reports whether the tag's constructed bit (20 in its first byte) is set: its
// value is a sequence of data objects.
func (t Tag) Constructed() bool {
	b := t.Bytes()
	return len(b) > 0 && b[0]&0x20 != 0
}

// valid reports whether t is one well-formed tag: a single byte whose low five bits are not
// all set, or such a first byte followed by continuation bytes (bit 8 set) and a last byte
// (bit 8 clear).
func (t Tag) valid() bool {
	b := t.Bytes()
	if len(b) == 0 {
		return false
	}
	if b[0]&0x1F != 0x1F {
		return len(b) == 1
	}
	if len(b) == 1 {
		return false
	}
	for _, c := range b[1 : len(b)-1] {
		if c&0x80 == 0 {
			return false
		}
	}
	return b[len(b)-1]&0x80 == 0
}

// TLV is one BER-TLV data object. A primitive has a Value (nil when empty). A constructed
// object decoded by DecodeTLV has Children (non-nil, possibly empty) and no Value; a
// constructed object with nil Children is kept opaque: Value holds its encoded contents as
// they are (DecodeCPM keeps the transparent templates 63 and 64 that way).
type TLV struct {
	Tag      Tag
	Value    []byte
	Children []TLV
}

// Get returns the first child of t with the given tag.
func (t TLV) Get(tag Tag) (TLV, bool) { return tlvFind(t.Children, tag) }

func tlvFind(objs []TLV, tag Tag) (TLV, bool) {
	for _, o := range objs {
		if o.Tag == tag {
			return o, true
		}
	}
	return TLV{}, false
}

// DecodeTLV decodes a sequence of BER-TLV data objects, recursing into every constructed
// one. Errors are *ParseError wrapping ErrMalformed; ID is the tag path to the object at
// fault ("61.5F20") and Offset its byte offset in b.
func DecodeTLV(b []byte) ([]TLV, error) {
	return decodeTLVWith(b, nil)
}

// decodeTLVWith is DecodeTLV where opaque(tag) reports which constructed tags are kept
// opaque (their contents in Value, not decoded).
func decodeTLVWith(b []byte, opaque func(Tag) bool) ([]TLV, error) {
	if len(b) > MaxPayload {
		return nil, malformed("", -1, "%d bytes is more than the %d a payload may hold", len(b), MaxPayload)
	}
	// Values alias one private copy of the input, so a caller may reuse b, and each value is
	// capped so that appending to one cannot overwrite the next.
	d := tlvDecoder{buf: bytes.Clone(b), opaque: opaque}
	return d.sequence(0, len(b), nil)
}

type tlvDecoder struct {
	buf    []byte
	opaque func(Tag) bool
}

// sequence decodes the data objects in buf[start:end]; path holds the enclosing tags.
func (d *tlvDecoder) sequence(start, end int, path []Tag) ([]TLV, error) {
	objs := []TLV{}
	for pos := start; pos < end; {
		tag, n, err := d.tag(pos, end, path)
		if err != nil {
			return nil, err
		}
		here := append(path[:len(path):len(path)], tag)
		length, m, err := d.length(pos+n, end, here, pos)
		if err != nil {
			return nil, err
		}
		vstart := pos + n + m
		if length > end-vstart {
			return nil, malformed(tlvPath(here), pos, "length %d runs past the end of its %s (%d bytes left)",
				length, tlvEnclosure(path), end-vstart)
		}
		vend := vstart + length
		o := TLV{Tag: tag}
		switch {
		case !tag.Constructed() || (d.opaque != nil && d.opaque(tag)):
			if length > 0 {
				o.Value = d.buf[vstart:vend:vend]
			}
		case len(here) >= MaxTLVDepth:
			return nil, malformed(tlvPath(here), pos, "templates nested deeper than %d levels", MaxTLVDepth)
		default:
			if o.Children, err = d.sequence(vstart, vend, here); err != nil {
				return nil, err
			}
		}
		objs = append(objs, o)
		pos = vend
	}
	return objs, nil
}

// tag reads the tag at buf[pos:end]; it returns the tag and how many bytes it took.
func (d *tlvDecoder) tag(pos, end int, path []Tag) (Tag, int, error) {
	b := d.buf[pos:end]
	if b[0] == 0x00 {
		return 0, 0, malformed(tlvPath(path), pos, "00 is not a tag (padding is not allowed)")
	}
	t := Tag(b[0])
	if b[0]&0x1F != 0x1F {
		return t, 1, nil
	}
	for i := 1; ; i++ {
		if i >= len(b) {
			return 0, 0, malformed(tlvPath(path), pos, "truncated: tag %X… runs past the end of its %s", b[:i], tlvEnclosure(path))
		}
		if i >= maxTagBytes {
			return 0, 0, malformed(tlvPath(path), pos, "tag %X… is longer than %d bytes", b[:i], maxTagBytes)
		}
		t = t<<8 | Tag(b[i])
		if b[i]&0x80 == 0 {
			return t, i + 1, nil
		}
	}
}

// length reads the length field at buf[pos:end] of the object that starts at obj; it returns
// the length and how many bytes the field took.
func (d *tlvDecoder) length(pos, end int, here []Tag, obj int) (int, int, error) {
	id := tlvPath(here)
	if pos >= end {
		return 0, 0, malformed(id, obj, "truncated: no length after the tag")
	}
	first := d.buf[pos]
	switch {
	case first < 0x80:
		return int(first), 1, nil
	case first == 0x80:
		return 0, 0, malformed(id, obj, "indefinite length (80) is not allowed")
	case first > 0x83:
		return 0, 0, malformed(id, obj, "length field %02X: more than 3 length bytes are not allowed", first)
	}
	n := int(first & 0x7F)
	if end-pos-1 < n {
		return 0, 0, malformed(id, obj, "truncated: length field %02X needs %d more bytes", first, n)
	}
	length := 0
	for _, c := range d.buf[pos+1 : pos+1+n] {
		length = length<<8 | int(c)
	}
	if tlvLengthSize(length) != 1+n {
		return 0, 0, malformed(id, obj, "length %d is not minimally encoded (%X)", length, d.buf[pos:pos+1+n])
	}
	return length, 1 + n, nil
}

// tlvLengthSize is how many bytes the minimal encoding of length takes.
func tlvLengthSize(length int) int {
	switch {
	case length < 0x80:
		return 1
	case length <= 0xFF:
		return 2
	case length <= 0xFFFF:
		return 3
	}
	return 4
}

func tlvAppendLength(b []byte, length int) []byte {
	switch n := tlvLengthSize(length); n {
	case 1:
		return append(b, byte(length))
	default:
		b = append(b, 0x80|byte(n-1))
		for shift := 8 * (n - 2); shift >= 0; shift -= 8 {
			b = append(b, byte(length>>shift))
		}
		return b
	}
}

// EncodeTLV encodes data objects: each tag, the minimal length, and the Value, or the
// encoded Children for a constructed object that has them. It refuses malformed tags,
// Children under a primitive tag, both Value and Children, nesting deeper than MaxTLVDepth
// and output longer than MaxPayload; errors wrap ErrMalformed. A constructed object with nil
// Children is opaque: its Value is written as it is, and it is the caller's business that
// it holds well-formed data objects.
func EncodeTLV(objs []TLV) ([]byte, error) {
	if err := tlvBounds(objs); err != nil {
		return nil, err
	}
	b, err := tlvEncode(nil, objs, nil)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxPayload {
		return nil, malformed("", -1, "encoding is %d bytes, more than the %d a payload may hold", len(b), MaxPayload)
	}
	return b, nil
}

func tlvEncode(b []byte, objs []TLV, path []Tag) ([]byte, error) {
	for _, o := range objs {
		here := append(path[:len(path):len(path)], o.Tag)
		id, off := tlvPath(here), len(b)
		switch {
		case !o.Tag.valid():
			return nil, malformed(tlvPath(path), off, "%s is not a well-formed tag", o.Tag)
		case len(o.Value) > MaxPayload:
			return nil, malformed(id, off, "value is %d bytes, more than the %d a payload may hold", len(o.Value), MaxPayload)
		case o.Children == nil:
			b = append(b, o.Tag.Bytes()...)
			b = tlvAppendLength(b, len(o.Value))
			b = append(b, o.Value...)
		case !o.Tag.Constructed():
			return nil, malformed(id, off, "a primitive tag cannot hold data objects")
		case len(o.Value) > 0:
			return nil, malformed(id, off, "a template has either a value or data objects, not both")
		default:
			inner, err := tlvEncode(nil, o.Children, here)
			if err != nil {
				return nil, err
			}
			if len(inner) > MaxPayload {
				return nil, malformed(id, off, "template is %d bytes, more than the %d a payload may hold", len(inner), MaxPayload)
			}
			b = append(b, o.Tag.Bytes()...)
			b = tlvAppendLength(b, len(inner))
			b = append(b, inner...)
		}
	}
	return b, nil
}

// tlvBounds refuses a tree that could not be encoded within MaxTLVDepth and MaxPayload
// before anything walks it whole: one built in memory may be huge, or even cyclic. It visits
// at most MaxPayload/2 data objects (each takes at least two bytes) and MaxTLVDepth levels.
func tlvBounds(objs []TLV) error {
	budget := MaxPayload / 2
	var walk func(objs []TLV, path []Tag) error
	walk = func(objs []TLV, path []Tag) error {
		for _, o := range objs {
			if budget--; budget < 0 {
				return malformed(tlvPath(path), -1, "more than %d data objects cannot fit in %d bytes", MaxPayload/2, MaxPayload)
			}
			if o.Children == nil {
				continue
			}
			here := append(path[:len(path):len(path)], o.Tag)
			if len(here) >= MaxTLVDepth {
				return malformed(tlvPath(here), -1, "templates nested deeper than %d levels", MaxTLVDepth)
			}
			if err := walk(o.Children, here); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(objs, nil)
}

// tlvSize is the encoded size of o (Value, or Children when present).
func tlvSize(o TLV) int {
	n := len(o.Value)
	if o.Children != nil {
		n = 0
		for _, c := range o.Children {
			n += tlvSize(c)
		}
	}
	return len(o.Tag.Bytes()) + tlvLengthSize(n) + n
}

// tlvPath formats tags as a dotted path of hex tags: "61.9F26".
func tlvPath(path []Tag) string {
	s := make([]string, len(path))
	for i, t := range path {
		s[i] = t.String()
	}
	return strings.Join(s, ".")
}

func tlvEnclosure(path []Tag) string {
	if len(path) == 0 {
		return "input"
	}
	return "template " + path[len(path)-1].String()
}
