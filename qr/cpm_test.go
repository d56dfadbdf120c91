package qr

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/posagent/posagent"
)

// The examples of EMV QRCPS CPM v1.0 Annex B, as published (and as mvallim/emv-qrcode,
// kenmaz's JPQRReader and others test them).
const (
	// B.1: one application, with Track 2 Equivalent Data.
	//	85 05 43 50 56 30 31
	//	61 1A 4F 07 A0 00 00 00 55 55 55
	//	      57 0F 12 34 56 78 90 12 34 58 D1 91 22 01 12 34 5F
	cpmAnnexB1 = "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8="
	// B.2: two applications and a Common Data Template.
	//	85 05 43 50 56 30 31
	//	61 13 4F 07 A0 00 00 00 55 55 55  50 08 "Product1"
	//	61 13 4F 07 A0 00 00 00 66 66 66  50 08 "Product2"
	//	62 49 5A 08 12 34 56 78 90 12 34 58
	//	      5F 20 0E "CARDHOLDER/EMV"
	//	      5F 2D 08 "ruesdeen"
	//	      64 21 9F 10 07 06 01 0A 03 00 00 00
	//	            9F 26 08 58 4F D3 85 FA 23 4B CC
	//	            9F 36 02 00 01
	//	            9F 37 04 6D 58 EF 13
	cpmAnnexB2 = "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MWETTwegAAAAZmZmUAhQcm9kdWN0MmJJWggSNFZ4kBI0WF8gDkNBUkRIT0xERVIvRU1WXy0IcnVlc2RlZW5kIZ8QBwYBCgMAAACfJghYT9OF+iNLzJ82AgABnzcEbVjvEw=="
)

// b64 is the CPM payload for hex-written binary.
func cpmB64(t testing.TB, s string) string {
	t.Helper()
	return base64.StdEncoding.EncodeToString(tlvHex(t, s))
}

// tl is the hex of one data object: tag, the length of the joined hex values, the values.
func cpmTL(tag string, values ...string) string {
	v := strings.ReplaceAll(strings.Join(values, ""), " ", "")
	if len(v)%2 != 0 {
		panic("odd hex in test: " + v)
	}
	return tag + hex.EncodeToString(tlvAppendLength(nil, len(v)/2)) + v
}

const (
	cpmPFI  = "85 05 4350563031"           // CPV01
	cpmApp1 = "61 09 4F 07 A0000000555555" // the smallest valid Application Template
)

func TestDecodeCPM_annexB(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []TLV
		apps    []CPMApplication
	}{
		{
			"B.1", cpmAnnexB1,
			[]TLV{
				{Tag: 0x85, Value: []byte("CPV01")},
				{Tag: 0x61, Children: []TLV{
					{Tag: 0x4F, Value: tlvHex(t, "A0000000555555")},
					{Tag: 0x57, Value: tlvHex(t, "1234567890123458D191220112345F")},
				}},
			},
			[]CPMApplication{{AID: "A0000000555555", PAN: "123456******3458", Expiry: "1912"}},
		},
		{
			"B.2", cpmAnnexB2,
			[]TLV{
				{Tag: 0x85, Value: []byte("CPV01")},
				{Tag: 0x61, Children: []TLV{
					{Tag: 0x4F, Value: tlvHex(t, "A0000000555555")},
					{Tag: 0x50, Value: []byte("Product1")},
				}},
				{Tag: 0x61, Children: []TLV{
					{Tag: 0x4F, Value: tlvHex(t, "A0000000666666")},
					{Tag: 0x50, Value: []byte("Product2")},
				}},
				{Tag: 0x62, Children: []TLV{
					{Tag: 0x5A, Value: tlvHex(t, "1234567890123458")},
					{Tag: 0x5F20, Value: []byte("CARDHOLDER/EMV")},
					{Tag: 0x5F2D, Value: []byte("ruesdeen")},
					{Tag: 0x64, Value: tlvHex(t, "9F10 07 06010A03000000 9F26 08 584FD385FA234BCC 9F36 02 0001 9F37 04 6D58EF13")},
				}},
			},
			[]CPMApplication{
				{AID: "A0000000555555", Label: "Product1", PAN: "123456******3458", CardholderName: "CARDHOLDER/EMV"},
				{AID: "A0000000666666", Label: "Product2", PAN: "123456******3458", CardholderName: "CARDHOLDER/EMV"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCPM(tt.payload)
			if err != nil {
				t.Fatalf("DecodeCPM: %v", err)
			}
			if got := c.Objects; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("objects\n got %#v\nwant %#v", got, tt.want)
			}
			if got := c.Applications(); !reflect.DeepEqual(got, tt.apps) {
				t.Errorf("applications\n got %+v\nwant %+v", got, tt.apps)
			}
			got, err := EncodeCPM(c)
			if err != nil {
				t.Fatalf("EncodeCPM: %v", err)
			}
			if got != tt.payload {
				t.Errorf("EncodeCPM(DecodeCPM(x))\n got %s\nwant %s", got, tt.payload)
			}
		})
	}
}

// TestCPM_fixtures decodes each testdata/cpm/NAME.txt, compares its JSON with NAME.json and
// checks that it encodes back to the same payload.
func TestCPM_fixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "cpm", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(file, ".txt") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			c, err := DecodeCPM(string(in))
			if err != nil {
				t.Fatalf("DecodeCPM: %v", err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if got = append(got, '\n'); !bytes.Equal(got, want) {
				t.Errorf("JSON differs from %s.json; got:\n%s", name, got)
			}
			enc, err := EncodeCPM(c)
			if err != nil {
				t.Fatal(err)
			}
			if enc != strings.TrimSpace(string(in)) {
				t.Errorf("EncodeCPM = %s, want %s", enc, in)
			}
		})
	}
}

func TestCPM_MarshalJSON(t *testing.T) {
	c, err := DecodeCPM(cpmAnnexB1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"format":"emv-cpm","objects":[{"tag":"85","value":"4350563031","text":"CPV01"},` +
		`{"tag":"61","objects":[{"tag":"4F","value":"A0000000555555"},{"tag":"57","value":"1234567890123458D191220112345F"}]}],` +
		`"applications":[{"aid":"A0000000555555","pan":"123456******3458","expiry":"1912"}]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	// Empty values stay in the output; templates decoded empty show "objects": [].
	got, err = json.Marshal([]TLV{{Tag: 0x9F02}, {Tag: 0x70, Children: []TLV{}}, {Tag: 0x50, Value: []byte{0x01}}})
	if err != nil {
		t.Fatal(err)
	}
	want = `[{"tag":"9F02","value":""},{"tag":"70","objects":[]},{"tag":"50","value":"01"}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestDecodeCPM_accepts(t *testing.T) {
	tests := []struct {
		name    string
		payload string
	}{
		{"unpadded", strings.TrimRight(cpmAnnexB1, "=")},
		{"surrounding whitespace", " \t" + cpmAnnexB1 + "\r\n"},
		{"unknown tags in templates", cpmB64(t, cpmPFI+cpmTL("61", "4F 07 A0000000555555 9F02 06 000000001250")+cpmTL("62", "DF8101 01 00"))},
		{"unknown constructed tag", cpmB64(t, cpmPFI+"61 10 4F 07 A0000000555555 70 05 9F27 02 8001")},
		{"application specific transparent template", cpmB64(t, cpmPFI+"61 0D 4F 07 A0000000555555 63 02 FFFF")},
		{"19-digit PAN with F", cpmB64(t, cpmPFI+cpmApp1+"62 0C 5A 0A 6212345678901230123F")},
		{"12-digit PAN", cpmB64(t, cpmPFI+cpmApp1+"62 08 5A 06 621234567890")},
		{"track 2 without discretionary data", cpmB64(t, cpmPFI+cpmTL("61", "4F 07 A0000000555555", cpmTL("57", "1234567890123458D2512201")))},
		{"PAN only in the application", cpmB64(t, cpmPFI+"61 13 4F 07 A0000000555555 5A 08 1234567890123458")},
		{"language one code", cpmB64(t, cpmPFI+cpmApp1+"62 05 5F2D 02 7A68")},
		{"all known tags", cpmB64(t, cpmPFI+"61 81 FA"+
			"4F 07 A0000000555555"+
			"50 10 4142434445464748494A4B4C4D4E4F50"+ // 16 characters
			"57 13 6212345678901230123D30122011234567890F"+
			"5A 0A 6212345678901230123F"+
			"5F20 1A 4142434445464748494A4B4C4D4E4F505152535455565758595A"+ // 26 characters
			"5F24 03 301231"+
			"5F2D 08 656E7A6866726573"+
			"5F34 01 01"+
			"5F50 0B 68747470733A2F2F612E62"+
			"82 02 7C00"+
			"9F08 02 0002"+
			"9F10 20 0000000000000000000000000000000000000000000000000000000000000000"+
			"9F12 04 E9616161"+
			"9F19 06 001234567890"+
			"9F24 1D 5630303130303134303030303030303030303030303030303030303030"+
			"9F25 02 0123"+
			"9F26 08 1122334455667788"+
			"9F27 01 80"+
			"9F36 02 0001"+
			"9F37 04 12345678"+
			"63 00")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCPM(tt.payload)
			if err != nil {
				t.Fatalf("DecodeCPM(%s): %v", tt.payload, err)
			}
			enc, err := EncodeCPM(c)
			if err != nil {
				t.Fatalf("EncodeCPM: %v", err)
			}
			again, err := DecodeCPM(enc)
			if err != nil {
				t.Fatalf("DecodeCPM(EncodeCPM(x)): %v", err)
			}
			if !reflect.DeepEqual(again, c) {
				t.Errorf("round trip\n got %#v\nwant %#v", again, c)
			}
			if want := base64.StdEncoding.EncodeToString(cpmRaw(t, tt.payload)); enc != want {
				t.Errorf("EncodeCPM = %s, want the canonical %s", enc, want)
			}
		})
	}
}

func cpmRaw(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(s), "="))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeCPM_errors(t *testing.T) {
	over := strings.Repeat("A", base64.StdEncoding.EncodedLen(MaxPayload)+4)
	tests := []struct {
		name    string
		payload string
		kind    error // ErrMalformed or ErrRule
		id      string
		offset  int
		msg     string
	}{
		// base64: offsets count characters of the payload.
		{"empty", "", ErrMalformed, "", -1, "empty payload"},
		{"blank", " \r\n", ErrMalformed, "", -1, "empty payload"},
		{"bad character", "hQVD*UFYwMQ==", ErrMalformed, "", 4, `'*' is not a base64 character`},
		{"non-ASCII", "\u3000hQVD中UFYwMQ==", ErrMalformed, "", 5, `'中' is not a base64 character`},
		{"URL-safe", "  hQVDUFYw-Q==", ErrMalformed, "", 10, "URL-safe base64"},
		{"URL-safe underscore", "hQ_D", ErrMalformed, "", 2, "URL-safe base64"},
		{"inner whitespace", "hQVD UFYwMQ==", ErrMalformed, "", 4, "whitespace inside the payload"},
		{"inner newline", "hQVDUFYw\nMQ==", ErrMalformed, "", 8, "whitespace inside the payload"},
		{"padding inside", "hQ==hQ==", ErrMalformed, "", 2, "padding '=' inside"},
		{"three padding", "hQVDUFYwMQ===", ErrMalformed, "", 10, "3 padding characters"},
		{"padded not multiple of 4", "hQVDUFYwMQ=", ErrMalformed, "", 10, "not a multiple of 4"},
		{"unused bits set", "hQVDUFYwMR==", ErrMalformed, "", 10, "not canonical (unused bits set)"},
		{"unused bits set, unpadded", "hQVDUFYwMR", ErrMalformed, "", 8, "not canonical"},
		{"impossible length", "hQVDU", ErrMalformed, "", 4, "truncated, or not canonical"},
		{"oversized", over, ErrMalformed, "", -1, "longer than the 5464"},
		{"MPM, not CPM", "00020101021229300012D156000000000510A93FO3230Q", ErrRule, "", 0, "begins with byte D3"},

		// BER-TLV: offsets are bytes of the decoded binary.
		{"truncated", cpmB64(t, "85 05 435056"), ErrMalformed, "85", 0, "runs past the end"},
		{"truncated template", cpmB64(t, cpmPFI+"61 09 4F 07 A00000"), ErrMalformed, "61", 7, "runs past the end"},
		{"indefinite length", cpmB64(t, cpmPFI+"61 80 4F 07 A0000000555555 0000"), ErrMalformed, "61", 7, "indefinite length"},
		{"long length field", cpmB64(t, cpmPFI+"61 84 00000009 4F 07 A0000000555555"), ErrMalformed, "61", 7, "more than 3 length bytes"},
		{"non-minimal length", cpmB64(t, cpmPFI+"61 81 09 4F 07 A0000000555555"), ErrMalformed, "61", 7, "not minimally encoded"},
		{"trailing garbage", cpmB64(t, cpmPFI+cpmApp1+"FF"), ErrMalformed, "", 18, "truncated"},
		{"too deep", base64.StdEncoding.EncodeToString(append(tlvHex(t, cpmPFI), tlvNested(MaxTLVDepth, nil)...)), ErrMalformed, "70.70.70.70.70.70.70.70", 21, "nested deeper than 8 levels"},

		// Top level.
		{"missing 85", cpmB64(t, cpmApp1), ErrRule, "", 0, "begins with 85 (Payload Format Indicator); this one begins with byte 61"},
		{"85 not first", cpmB64(t, cpmApp1+cpmPFI), ErrRule, "", 0, "begins with byte 61"},
		{"wrong version", cpmB64(t, "85 05 4350563032"+cpmApp1), ErrRule, "85", 0, `version "CPV02" is not supported`},
		{"wrong indicator", cpmB64(t, "85 05 3031323334"+cpmApp1), ErrRule, "85", 0, `must be "CPV01", got "01234"`},
		{"empty indicator", cpmB64(t, "85 00"+cpmApp1), ErrRule, "85", 0, `must be "CPV01", got ""`},
		{"85 constructed form", cpmB64(t, "A5 00"+cpmApp1), ErrRule, "", 0, "begins with byte A5"},
		{"85 twice", cpmB64(t, cpmPFI+cpmApp1+cpmPFI), ErrRule, "85", 18, "appears twice"},
		{"no application", cpmB64(t, cpmPFI+"62 0A 5A 08 1234567890123458"), ErrRule, "61", -1, "at least one Application Template"},
		{"three applications", cpmB64(t, cpmPFI+cpmApp1+cpmApp1+cpmApp1), ErrRule, "61", 29, "at most two Application Templates"},
		{"two common templates", cpmB64(t, cpmPFI+cpmApp1+"62 00 62 00"), ErrRule, "62", 20, "at most one Common Data Template"},
		{"unknown top-level tag", cpmB64(t, cpmPFI+cpmApp1+"9F26 08 1122334455667788"), ErrRule, "9F26", 18, "not allowed at the top level"},
		{"63 at top level", cpmB64(t, cpmPFI+cpmApp1+"63 00"), ErrRule, "63", 18, "not allowed at the top level"},

		// Templates.
		{"61 without 4F", cpmB64(t, cpmPFI+"61 0A 50 08 50726F6475637431"), ErrRule, "61", 7, "must contain 4F (ADF Name)"},
		{"empty 61", cpmB64(t, cpmPFI+"61 00"), ErrRule, "61", 7, "must contain 4F"},
		{"duplicate in 61", cpmB64(t, cpmPFI+"61 0F 4F 07 A0000000555555 50 01 41 50 01 42"), ErrRule, "61.50", 21, "appears twice in the Application Template (first at offset 18)"},
		{"duplicate unknown in 61", cpmB64(t, cpmPFI+"61 11 4F 07 A0000000555555 9F02 01 00 9F02 01 00"), ErrRule, "61.9F02", 22, "appears twice"},
		{"duplicate in 62", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", "5F2D 02 656E 5F2D 02 7A68")), ErrRule, "62.5F2D", 25, "appears twice in the Common Data Template"},
		{"5A in 61 and 62", cpmB64(t, cpmPFI+cpmTL("61", "4F 07 A0000000555555 5A 08 1234567890123458")+cpmTL("62", "5A 08 1234567890123458")), ErrRule, "62.5A", 30, "in both an Application Template (61) and the Common Data Template (62) (first at offset 18)"},
		{"50 in 62 then 61", cpmB64(t, cpmPFI+cpmTL("62", "50 01 41")+cpmTL("61", "4F 07 A0000000555555 50 01 42")), ErrRule, "61.50", 23, "in both"},
		{"57 in the second 61 and 62", cpmB64(t, cpmPFI+cpmApp1+cpmTL("61", "4F 07 A0000000555556 57 0E 6212345678901230123D3012201F")+cpmTL("62", "57 0E 6212345678901230123D3012201F")), ErrRule, "62.57", 47, "in both"},
		{"85 inside 61", cpmB64(t, cpmPFI+"61 10 4F 07 A0000000555555 85 05 4350563031"), ErrRule, "61.85", 18, "not allowed inside a template"},
		{"61 inside 61", cpmB64(t, cpmPFI+"61 14 4F 07 A0000000555555"+cpmApp1), ErrRule, "61.61", 18, "not allowed inside a template"},
		{"62 inside 62", cpmB64(t, cpmPFI+cpmApp1+"62 02 62 00"), ErrRule, "62.62", 20, "not allowed inside a template"},
		{"63 in 62", cpmB64(t, cpmPFI+cpmApp1+"62 02 63 00"), ErrRule, "62.63", 20, "belongs in an Application Template"},
		{"64 in 61", cpmB64(t, cpmPFI+"61 0B 4F 07 A0000000555555 64 00"), ErrRule, "61.64", 18, "belongs in the Common Data Template"},

		// Field formats.
		{"ADF Name short", cpmB64(t, cpmPFI+"61 06 4F 04 A0000000"), ErrRule, "61.4F", 9, "ADF Name must be 5–16 bytes, got 4"},
		{"ADF Name long", cpmB64(t, cpmPFI+"61 13 4F 11 A000000055555500000000000000000000"), ErrRule, "61.4F", 9, "ADF Name must be 5–16 bytes, got 17"},
		{"PAN short", cpmB64(t, cpmPFI+"61 11 4F 07 A0000000555555 5A 06 12345678901F"), ErrRule, "61.5A", 18, "PAN must be 12–19 digits, got 11"},
		{"PAN long", cpmB64(t, cpmPFI+cpmApp1+"62 0C 5A 0A 12345678901234567890"), ErrRule, "62.5A", 20, "PAN must be 12–19 digits, got 20"},
		{"PAN bytes", cpmB64(t, cpmPFI+cpmApp1+"62 0D 5A 0B 1234567890123456789FFF"), ErrRule, "62.5A", 20, "Application PAN must be 1–10 bytes, got 11"},
		{"PAN not digits", cpmB64(t, cpmPFI+cpmApp1+"62 0A 5A 08 12345678901234A8"), ErrRule, "62.5A", 20, "PAN must be digits padded with F"},
		{"PAN F inside", cpmB64(t, cpmPFI+cpmApp1+"62 0A 5A 08 123456789012F458"), ErrRule, "62.5A", 20, "PAN must be digits padded with F"},
		{"track 2 without D", cpmB64(t, cpmPFI+cpmApp1+"62 0A 57 08 1234567890123458"), ErrRule, "62.57", 20, "no field separator D"},
		{"track 2 two D", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2512D01"))), ErrRule, "62.57", 20, "digits around one separator D"},
		{"track 2 F inside", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2512F01"))), ErrRule, "62.57", 20, "digits around one separator D"},
		{"track 2 short PAN", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "12345678901D2512201F"))), ErrRule, "62.57", 20, "Track 2 PAN must be 12–19 digits, got 11"},
		{"track 2 no service code", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2512F"))), ErrRule, "62.57", 20, "expiry (YYMM) and service code"},
		{"track 2 month 13", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2513201"))), ErrRule, "62.57", 20, "expiry month 13 is not 01–12"},
		{"track 2 too long", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2512201", "000000000000000F"))), ErrRule, "62.57", 20, "must be 1–19 bytes, got 20"},
		{"cardholder name short", cpmB64(t, cpmPFI+cpmApp1+"62 04 5F20 01 41"), ErrRule, "62.5F20", 20, "Cardholder Name must be 2–26 bytes, got 1"},
		{"cardholder name control", cpmB64(t, cpmPFI+cpmApp1+"62 05 5F20 02 410A"), ErrRule, "62.5F20", 20, "printable ASCII, has byte 0A"},
		{"cardholder name UTF-8", cpmB64(t, cpmPFI+cpmApp1+"62 09 5F20 06 E5BCA0E4B889"), ErrRule, "62.5F20", 20, "printable ASCII, has byte E5"},
		{"label empty", cpmB64(t, cpmPFI+"61 0B 4F 07 A0000000555555 50 00"), ErrRule, "61.50", 18, "Application Label must be 1–16 bytes, got 0"},
		{"language odd", cpmB64(t, cpmPFI+cpmApp1+"62 06 5F2D 03 656E67"), ErrRule, "62.5F2D", 20, "two-letter ISO 639 codes, got 3 letters"},
		{"language digits", cpmB64(t, cpmPFI+cpmApp1+"62 05 5F2D 02 6531"), ErrRule, "62.5F2D", 20, "must be letters"},
		{"language long", cpmB64(t, cpmPFI+cpmApp1+"62 0D 5F2D 0A 656E7A6866726573646B"), ErrRule, "62.5F2D", 20, "2–8 bytes, got 10"},
		{"cryptogram short", cpmB64(t, cpmPFI+cpmApp1+"62 0A 9F26 07 11223344556677"), ErrRule, "62.9F26", 20, "Application Cryptogram must be 8 bytes, got 7"},
		{"ATC long", cpmB64(t, cpmPFI+cpmTL("61", "4F 07 A0000000555555 9F36 03 000001")), ErrRule, "61.9F36", 18, "Application Transaction Counter must be 2 bytes, got 3"},
		{"token requestor not BCD", cpmB64(t, cpmPFI+cpmApp1+"62 09 9F19 06 00123456789A"), ErrRule, "62.9F19", 20, "Token Requestor ID must be BCD digits"},
		{"PAR length", cpmB64(t, cpmPFI+cpmApp1+"62 05 9F24 02 4142"), ErrRule, "62.9F24", 20, "must be 29 bytes, got 2"},
		{"PAR not alphanumeric", cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("9F24", "563030313030313430303030303030303030303030303030303030302D"))), ErrRule, "62.9F24", 20, "letters and digits, has byte 2D"},
		{"IAD too long", cpmB64(t, cpmPFI+cpmApp1+"62 24 9F10 21 000000000000000000000000000000000000000000000000000000000000000000"), ErrRule, "62.9F10", 20, "Issuer Application Data must be 1–32 bytes, got 33"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCPM(tt.payload)
			if err == nil {
				t.Fatalf("DecodeCPM(%q) = %+v, want an error", tt.payload, got)
			}
			checkCPMError(t, err, tt.kind, tt.id, tt.offset, tt.msg)
		})
	}
}

func checkCPMError(t *testing.T, err, kind error, id string, offset int, msg string) {
	t.Helper()
	if !errors.Is(err, kind) || !errors.Is(err, posagent.ErrInvalidInput) {
		t.Errorf("error %v does not match %v and ErrInvalidInput", err, kind)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %T is not a *ParseError", err)
	}
	if pe.ID != id || pe.Offset != offset {
		t.Errorf("error at (%q, %d), want (%q, %d): %v", pe.ID, pe.Offset, id, offset, err)
	}
	if !strings.Contains(pe.Msg, msg) {
		t.Errorf("error %q does not say %q", pe.Msg, msg)
	}
}

func TestDecodeCPM_errorText(t *testing.T) {
	_, err := DecodeCPM(cpmB64(t, cpmPFI+"61 11 4F 07 A0000000555555 5A 06 12345678901F"))
	if got, want := err.Error(), "tag 61.5A at offset 18: PAN must be 12–19 digits, got 11"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestEncodeCPM_refusesWhatDecodeRefuses feeds EncodeCPM the tree of every payload that
// decodes as BER-TLV but breaks a rule, and expects the same error as DecodeCPM's.
func TestEncodeCPM_refusesWhatDecodeRefuses(t *testing.T) {
	payloads := []string{
		cpmB64(t, cpmApp1),
		cpmB64(t, "85 05 4350563032"+cpmApp1),
		cpmB64(t, cpmPFI),
		cpmB64(t, cpmPFI+cpmApp1+cpmApp1+cpmApp1),
		cpmB64(t, cpmPFI+"61 0A 50 08 50726F6475637431"),
		cpmB64(t, cpmPFI+"61 0F 4F 07 A0000000555555 50 01 41 50 01 42"),
		cpmB64(t, cpmPFI+cpmApp1+"62 02 63 00"),
		cpmB64(t, cpmPFI+"61 11 4F 07 A0000000555555 5A 06 12345678901F"),
		cpmB64(t, cpmPFI+cpmApp1+cpmTL("62", cpmTL("57", "1234567890123458D2513201"))),
		cpmB64(t, cpmPFI+cpmApp1+"62 05 5F20 02 410A"),
	}
	for _, p := range payloads {
		_, decErr := DecodeCPM(p)
		if decErr == nil {
			t.Fatalf("DecodeCPM(%s) succeeded; the test wants a payload it refuses", p)
		}
		objs, err := decodeTLVWith(cpmRaw(t, p), cpmOpaque)
		if err != nil {
			t.Fatalf("decodeTLVWith(%s): %v", p, err)
		}
		_, encErr := EncodeCPM(&CPM{Objects: objs})
		if encErr == nil || encErr.Error() != decErr.Error() || !errors.Is(encErr, ErrRule) {
			t.Errorf("EncodeCPM of %s: got error %v, want %v", p, encErr, decErr)
		}
	}
}

func TestEncodeCPM_errors(t *testing.T) {
	pf := TLV{Tag: 0x85, Value: []byte("CPV01")}
	adf := TLV{Tag: 0x4F, Value: tlvHex(t, "A0000000555555")}
	cyclic := []TLV{pf, {Tag: 0x61}}
	cyclic[1].Children = cyclic[1:]
	wide := []TLV{pf, {Tag: 0x61}}
	wide[1].Children = []TLV{adf, wide[1], wide[1], wide[1]}
	wide[1].Children[1].Children = wide[1].Children
	tests := []struct {
		name   string
		in     *CPM
		kind   error
		id     string
		offset int
		msg    string
	}{
		{"nil", nil, ErrRule, "", -1, "no consumer-presented code"},
		{"zero tag first", &CPM{Objects: []TLV{{Tag: 0}}}, ErrRule, "", 0, "begins with byte 00"},
		{"cyclic", &CPM{Objects: cyclic}, ErrMalformed, "61.61.61.61.61.61.61.61", -1, "nested deeper than 8 levels"},
		{"cyclic and wide", &CPM{Objects: wide}, ErrMalformed, "61.61.61.61.61.61.61.61", -1, "nested deeper than 8 levels"},
		{"too many objects", &CPM{Objects: append([]TLV{pf}, make([]TLV, MaxPayload/2)...)}, ErrMalformed, "", -1, "more than 2048 data objects"},
		{"empty", &CPM{}, ErrRule, "85", -1, "missing"},
		{"opaque application template", &CPM{Objects: []TLV{pf, {Tag: 0x61, Value: tlvHex(t, "4F 07 A0000000555555")}}},
			ErrMalformed, "61", 7, "must be given as Children"},
		{"unknown constructed given opaque", &CPM{Objects: []TLV{pf, {Tag: 0x61, Children: []TLV{adf, {Tag: 0x70, Value: []byte{1}}}}}},
			ErrMalformed, "61.70", 18, "must be given as Children"},
		{"transparent template given as children", &CPM{Objects: []TLV{pf, {Tag: 0x61, Children: []TLV{adf, {Tag: 0x63, Children: []TLV{}}}}}},
			ErrMalformed, "61.63", 18, "give its encoded data objects as Value"},
		{"children under primitive", &CPM{Objects: []TLV{pf, {Tag: 0x61, Children: []TLV{{Tag: 0x4F, Children: []TLV{}}}}}},
			ErrMalformed, "61.4F", 9, "a primitive tag cannot hold data objects"},
		{"value and children", &CPM{Objects: []TLV{pf, {Tag: 0x61, Value: []byte{1}, Children: []TLV{adf}}}},
			ErrMalformed, "61", 7, "either a value or data objects"},
		{"bad tag", &CPM{Objects: []TLV{pf, {Tag: 0x61, Children: []TLV{adf, {Tag: 0x9F, Value: []byte{1}}}}}},
			ErrMalformed, "61", 18, "9F is not a well-formed tag"},
		{"oversized", &CPM{Objects: []TLV{pf, {Tag: 0x61, Children: []TLV{adf, {Tag: 0x9F02, Value: make([]byte, MaxPayload)}}}}},
			ErrMalformed, "61", 7, "template is 4110 bytes, more than the 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeCPM(tt.in)
			if err == nil {
				t.Fatalf("EncodeCPM = %q, want an error", got)
			}
			checkCPMError(t, err, tt.kind, tt.id, tt.offset, tt.msg)
		})
	}
}

func TestEncodeCPM_built(t *testing.T) {
	// A code built by hand encodes as the spec's example B.1 does.
	c := &CPM{Objects: []TLV{
		{Tag: 0x85, Value: []byte("CPV01")},
		{Tag: 0x61, Children: []TLV{
			{Tag: 0x4F, Value: tlvHex(t, "A0000000555555")},
			{Tag: 0x57, Value: tlvHex(t, "1234567890123458D191220112345F")},
		}},
	}}
	got, err := EncodeCPM(c)
	if err != nil {
		t.Fatal(err)
	}
	if got != cpmAnnexB1 {
		t.Errorf("got %s, want %s", got, cpmAnnexB1)
	}
}

func TestCPM_Applications(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		want    []CPMApplication
	}{
		{
			"common data fills in what an application lacks",
			cpmB64(t, cpmPFI+
				cpmTL("61", "4F 07 A0000003330101", cpmTL("57", "6212345678901230123D3012201F"))+
				cpmTL("61", "4F 07 A0000003330102")+
				cpmTL("62", "50 03 424242 5A 08 1234567890123458 5F24 03 271231 5F20 03 412F42")),
			[]CPMApplication{
				{AID: "A0000003330101", Label: "BBB", PAN: "621234*********0123", Expiry: "3012", CardholderName: "A/B"},
				{AID: "A0000003330102", Label: "BBB", PAN: "123456******3458", Expiry: "2712", CardholderName: "A/B"},
			},
		},
		{
			"expiry from the application's 5F24 when its track 2 has none",
			cpmB64(t, cpmPFI+cpmTL("61", "4F 07 A0000003330101 5A 08 1234567890123458 5F24 03 281130")),
			[]CPMApplication{{AID: "A0000003330101", PAN: "123456******3458", Expiry: "2811"}},
		},
		{
			"nothing but the AID",
			cpmB64(t, cpmPFI+cpmApp1),
			[]CPMApplication{{AID: "A0000000555555"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeCPM(tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Applications(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCPM_Get(t *testing.T) {
	c, err := DecodeCPM(cpmAnnexB2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path []Tag
		want string // value, as text
		ok   bool
	}{
		{[]Tag{0x85}, "CPV01", true},
		{[]Tag{0x61, 0x50}, "Product1", true},
		{[]Tag{0x62, 0x5F20}, "CARDHOLDER/EMV", true},
		{[]Tag{0x62, 0x4F}, "", false},
		{[]Tag{0x63}, "", false},
		{nil, "", false},
	}
	for _, tt := range tests {
		got, ok := c.Get(tt.path...)
		if ok != tt.ok || string(got.Value) != tt.want {
			t.Errorf("Get(%v) = %q, %v; want %q, %v", tt.path, got.Value, ok, tt.want, tt.ok)
		}
	}
}

func TestCPM_MaskPAN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"6212345678900123", "621234******0123"},
		{"6212345678901230123", "621234*********0123"},
		{"1234567890123", "123456***0123"},
		{"123456789012", "********9012"},
		{"12345", "*2345"},
		{"1234", "****"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskPAN(tt.in); got != tt.want {
			t.Errorf("MaskPAN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
