package qr

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/posagent/posagent"
)

// unhex decodes hex written with spaces for readability.
func tlvHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex in test: %v", err)
	}
	return b
}

// nested returns n constructed 70 templates inside one another around inner.
func tlvNested(n int, inner []byte) []byte {
	b := inner
	for i := 0; i < n; i++ {
		b = append(append([]byte{0x70}, tlvAppendLength(nil, len(b))...), b...)
	}
	return b
}

func TestTLV_Tag(t *testing.T) {
	tests := []struct {
		tag         Tag
		str         string
		bytes       []byte
		constructed bool
		valid       bool
	}{
		{0x85, "85", []byte{0x85}, false, true},
		{0x61, "61", []byte{0x61}, true, true},
		{0x4F, "4F", []byte{0x4F}, false, true},
		{0x5F20, "5F20", []byte{0x5F, 0x20}, false, true},
		{0x9F26, "9F26", []byte{0x9F, 0x26}, false, true},
		{0xBF0C, "BF0C", []byte{0xBF, 0x0C}, true, true},
		{0xDF8101, "DF8101", []byte{0xDF, 0x81, 0x01}, false, true},
		{0x9F, "9F", []byte{0x9F}, false, false},           // needs a second byte
		{0x9F80, "9F80", []byte{0x9F, 0x80}, false, false}, // last byte has bit 8 set
		{0x5A20, "5A20", []byte{0x5A, 0x20}, false, false}, // single-byte tag with a second byte
		{0, "", nil, false, false},
	}
	for _, tt := range tests {
		if got := tt.tag.String(); got != tt.str {
			t.Errorf("Tag(%#x).String() = %q, want %q", uint32(tt.tag), got, tt.str)
		}
		if got := tt.tag.Bytes(); !bytes.Equal(got, tt.bytes) {
			t.Errorf("Tag(%#x).Bytes() = %X, want %X", uint32(tt.tag), got, tt.bytes)
		}
		if got := tt.tag.Constructed(); got != tt.constructed {
			t.Errorf("Tag(%#x).Constructed() = %v, want %v", uint32(tt.tag), got, tt.constructed)
		}
		if got := tt.tag.valid(); got != tt.valid {
			t.Errorf("Tag(%#x).valid() = %v, want %v", uint32(tt.tag), got, tt.valid)
		}
	}
}

func TestDecodeTLV(t *testing.T) {
	long := bytes.Repeat([]byte{0xAB}, 200)
	longer := bytes.Repeat([]byte{0xCD}, 300)
	tests := []struct {
		name string
		in   []byte
		want []TLV
	}{
		{"nothing", nil, []TLV{}},
		{"primitive", tlvHex(t, "85 05 4350563031"), []TLV{{Tag: 0x85, Value: []byte("CPV01")}}},
		{"empty value is nil", tlvHex(t, "9F02 00"), []TLV{{Tag: 0x9F02}}},
		{"two-byte tag", tlvHex(t, "9F36 02 0001"), []TLV{{Tag: 0x9F36, Value: []byte{0, 1}}}},
		{"three-byte tag", tlvHex(t, "DF8101 01 FF"), []TLV{{Tag: 0xDF8101, Value: []byte{0xFF}}}},
		{"length 81", append(tlvHex(t, "9F10 81 C8"), long...), []TLV{{Tag: 0x9F10, Value: long}}},
		{"length 82", append(tlvHex(t, "9F10 82 012C"), longer...), []TLV{{Tag: 0x9F10, Value: longer}}},
		{"length 127 short form", append(tlvHex(t, "50 7F"), long[:127]...), []TLV{{Tag: 0x50, Value: long[:127]}}},
		{"length 128 long form", append(tlvHex(t, "50 81 80"), long[:128]...), []TLV{{Tag: 0x50, Value: long[:128]}}},
		{"empty template", tlvHex(t, "61 00"), []TLV{{Tag: 0x61, Children: []TLV{}}}},
		{
			"nested templates",
			tlvHex(t, "61 0B 4F 02 A000 70 05 9F27 02 8001 50 00"),
			[]TLV{
				{Tag: 0x61, Children: []TLV{
					{Tag: 0x4F, Value: []byte{0xA0, 0x00}},
					{Tag: 0x70, Children: []TLV{{Tag: 0x9F27, Value: []byte{0x80, 0x01}}}},
				}},
				{Tag: 0x50},
			},
		},
		{
			// DecodeTLV keeps nothing opaque: the CPM transparent template is decoded too.
			"transparent template decoded",
			tlvHex(t, "63 04 9F27 01 80"),
			[]TLV{{Tag: 0x63, Children: []TLV{{Tag: 0x9F27, Value: []byte{0x80}}}}},
		},
		{"deepest nesting", tlvNested(MaxTLVDepth-1, tlvHex(t, "5A 01 12")), func() []TLV {
			leaf := []TLV{{Tag: 0x5A, Value: []byte{0x12}}}
			for i := 0; i < MaxTLVDepth-1; i++ {
				leaf = []TLV{{Tag: 0x70, Children: leaf}}
			}
			return leaf
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTLV(tt.in)
			if err != nil {
				t.Fatalf("DecodeTLV(%X): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodeTLV(%X)\n got %#v\nwant %#v", tt.in, got, tt.want)
			}
			enc, err := EncodeTLV(got)
			if err != nil {
				t.Fatalf("EncodeTLV: %v", err)
			}
			if !bytes.Equal(enc, tt.in) {
				t.Errorf("EncodeTLV(DecodeTLV(x)) = %X, want x = %X", enc, tt.in)
			}
		})
	}
}

func TestDecodeTLV_valuesDoNotAliasInput(t *testing.T) {
	in := tlvHex(t, "50 02 4142 50 02 4344")
	got, err := DecodeTLV(in)
	if err != nil {
		t.Fatal(err)
	}
	in[2] = 'X'
	if string(got[0].Value) != "AB" {
		t.Errorf("value changed with the input: %q", got[0].Value)
	}
	got[0].Value = append(got[0].Value, 'Z')
	if string(got[1].Value) != "CD" {
		t.Errorf("appending to one value overwrote the next: %q", got[1].Value)
	}
}

func TestDecodeTLV_errors(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		id     string
		offset int
		msg    string
	}{
		{"truncated tag", tlvHex(t, "9F"), "", 0, "truncated: tag 9F… runs past the end of its input"},
		{"truncated tag in template", tlvHex(t, "61 01 9F 26"), "61", 2, "truncated: tag 9F… runs past the end of its template 61"},
		{"tag too long", tlvHex(t, "9F FF FF FF 01 00"), "", 0, "longer than 4 bytes"},
		{"no length", tlvHex(t, "5A"), "5A", 0, "truncated: no length after the tag"},
		{"indefinite length", tlvHex(t, "61 80 4F 01 A0 00 00"), "61", 0, "indefinite length (80) is not allowed"},
		{"four length bytes", tlvHex(t, "5A 84 00 00 00 01 12"), "5A", 0, "more than 3 length bytes"},
		{"reserved length byte", tlvHex(t, "5A FF"), "5A", 0, "more than 3 length bytes"},
		{"truncated length", tlvHex(t, "5A 82 01"), "5A", 0, "truncated: length field 82 needs 2 more bytes"},
		{"non-minimal 81", tlvHex(t, "5A 81 01 12"), "5A", 0, "length 1 is not minimally encoded (8101)"},
		{"non-minimal 82", tlvHex(t, "5A 82 0001 12"), "5A", 0, "not minimally encoded"},
		{"non-minimal 83", tlvHex(t, "5A 83 000001 12"), "5A", 0, "not minimally encoded"},
		{"value past end", tlvHex(t, "85 05 43505630"), "85", 0, "length 5 runs past the end of its input (4 bytes left)"},
		{"value past template end", tlvHex(t, "61 03 5A 05 12 34 56 78"), "61.5A", 2, "runs past the end of its template 61 (1 bytes left)"},
		{"trailing garbage", tlvHex(t, "85 05 4350563031 9F"), "", 7, "truncated"},
		{"trailing length-only", tlvHex(t, "85 05 4350563031 5A 03 12"), "5A", 7, "runs past the end"},
		{"padding byte", tlvHex(t, "85 05 4350563031 00 00"), "", 7, "00 is not a tag"},
		{"padding in template", tlvHex(t, "61 02 00 00"), "61", 2, "00 is not a tag"},
		{"too deep", tlvNested(MaxTLVDepth, nil), "70.70.70.70.70.70.70.70", 14, "nested deeper than 8 levels"},
		{"oversized", make([]byte, MaxPayload+1), "", -1, "more than the 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeTLV(tt.in)
			if err == nil {
				t.Fatalf("DecodeTLV(%X) = %v, want an error", tt.in, got)
			}
			if !errors.Is(err, ErrMalformed) || !errors.Is(err, posagent.ErrInvalidInput) {
				t.Errorf("error %v does not match ErrMalformed and ErrInvalidInput", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.ID != tt.id || pe.Offset != tt.offset {
				t.Errorf("error at (%q, %d), want (%q, %d): %v", pe.ID, pe.Offset, tt.id, tt.offset, err)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("error %q does not say %q", pe.Msg, tt.msg)
			}
		})
	}
}

func TestEncodeTLV_errors(t *testing.T) {
	cyclic := []TLV{{Tag: 0x61}}
	cyclic[0].Children = cyclic
	deep := []TLV{{Tag: 0x5A}}
	for i := 0; i < MaxTLVDepth; i++ {
		deep = []TLV{{Tag: 0x70, Children: deep}}
	}
	tests := []struct {
		name string
		in   []TLV
		msg  string
	}{
		{"zero tag", []TLV{{Tag: 0}}, "is not a well-formed tag"},
		{"incomplete tag", []TLV{{Tag: 0x9F, Value: []byte{1}}}, "9F is not a well-formed tag"},
		{"bad continuation", []TLV{{Tag: 0x9F80, Value: []byte{1}}}, "9F80 is not a well-formed tag"},
		{"bad tag in template", []TLV{{Tag: 0x61, Children: []TLV{{Tag: 0x1F}}}}, "1F is not a well-formed tag"},
		{"children under primitive", []TLV{{Tag: 0x5A, Children: []TLV{{Tag: 0x50}}}}, "a primitive tag cannot hold data objects"},
		{"value and children", []TLV{{Tag: 0x61, Value: []byte{1}, Children: []TLV{}}}, "either a value or data objects"},
		{"too deep", deep, "nested deeper than 8 levels"},
		{"cyclic", cyclic, "nested deeper than 8 levels"},
		{"oversized value", []TLV{{Tag: 0x50, Value: make([]byte, MaxPayload+1)}}, "more than the 4096"},
		{"oversized total", []TLV{{Tag: 0x50, Value: make([]byte, 3000)}, {Tag: 0x50, Value: make([]byte, 3000)}}, "more than the 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeTLV(tt.in)
			if err == nil {
				t.Fatalf("EncodeTLV = %X, want an error", got)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v does not match ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestEncodeTLV_opaque(t *testing.T) {
	// A constructed object with nil Children is written as it is.
	got, err := EncodeTLV([]TLV{{Tag: 0x63, Value: tlvHex(t, "9F27 01 80")}})
	if err != nil {
		t.Fatal(err)
	}
	if want := tlvHex(t, "63 04 9F27 01 80"); !bytes.Equal(got, want) {
		t.Errorf("got %X, want %X", got, want)
	}
}

func TestTLV_Get(t *testing.T) {
	tmpl := TLV{Tag: 0x61, Children: []TLV{{Tag: 0x4F, Value: []byte{1}}, {Tag: 0x50, Value: []byte("a")}, {Tag: 0x50, Value: []byte("b")}}}
	if got, ok := tmpl.Get(0x50); !ok || string(got.Value) != "a" {
		t.Errorf("Get(50) = %v, %v; want the first 50", got, ok)
	}
	if got, ok := tmpl.Get(0x5A); ok {
		t.Errorf("Get(5A) = %v, want nothing", got)
	}
}
