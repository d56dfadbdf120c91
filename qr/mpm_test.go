package qr

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/posagent/posagent"
)

func TestCRC16(t *testing.T) {
	// The catalogued check value of CRC-16/CCITT-FALSE (CRC-16/IBM-3740).
	if got, want := CRC16([]byte("123456789")), uint16(0x29B1); got != want {
		t.Fatalf("CRC16(123456789) = %04X, want %04X", got, want)
	}
	if got, want := CRC16(nil), uint16(0xFFFF); got != want {
		t.Fatalf("CRC16(nil) = %04X, want %04X", got, want)
	}
}

// withCRC appends "6304" and the correct CRC to a payload body.
func withCRC(body string) string {
	body += "6304"
	return body + crcHex(CRC16([]byte(body)))
}

// shopCode is a valid dynamic code with every kind of field, used by several tests.
func shopCode() MerchantCode {
	return MerchantCode{
		Name: "BEST TRANSPORT", City: "BEIJING", Country: "CN", MCC: "4111", Currency: "156",
		Amount: "23.72", PostalCode: "100000",
		Accounts: []Object{
			{ID: "26", Objects: []Object{{ID: "00", Value: "D15600000000"}, {ID: "05", Value: "A93FO3230Q"}}},
			{ID: "15", Value: "6200000000000000"},
		},
		Additional:  []Object{{ID: "01", Value: "INV-1"}, {ID: "07", Value: "T1"}, {ID: "09", Value: "ME"}},
		AltLanguage: "ZH", AltName: "最佳运输", AltCity: "北京", Dynamic: true,
	}
}

func TestBuildMPM_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		code MerchantCode
	}{
		{"dynamic with every field", shopCode()},
		{"static, no amount", MerchantCode{Name: "CORNER SHOP", City: "SHANGHAI", Country: "CN", MCC: "5411", Currency: "156",
			Accounts: []Object{{ID: "29", Objects: []Object{{ID: "00", Value: "A000000333010101"}}}}}},
		{"primitive account only", MerchantCode{Name: "X", City: "Y", Country: "SG", MCC: "5812", Currency: "702",
			Accounts: []Object{{ID: "02", Value: "4000123456789012"}}}},
		{"full-length name and city", MerchantCode{Name: strings.Repeat("N", 25), City: strings.Repeat("C", 15), Country: "TH",
			MCC: "5999", Currency: "764", Amount: "9999999999.99", Accounts: []Object{{ID: "29", Objects: []Object{{ID: "00", Value: "A000000677010111"}, {ID: "01", Value: "0066812345678"}}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.code.Objects()
			payload, err := BuildMPM(objs)
			if err != nil {
				t.Fatalf("BuildMPM: %v", err)
			}
			m, err := ParseMPM(payload, Strict)
			if err != nil {
				t.Fatalf("ParseMPM(%q): %v", payload, err)
			}
			got := stripOffsets(m.Objects[:len(m.Objects)-1])
			if want := stripOffsets(objs); !reflect.DeepEqual(got, want) {
				t.Fatalf("objects differ after round trip\n got %+v\nwant %+v", got, want)
			}
			if len(m.Warnings) != 0 {
				t.Fatalf("strict parse gave warnings %v", m.Warnings)
			}
			s := m.Merchant()
			if s.Name != tt.code.Name || s.City != tt.code.City || s.Amount != tt.code.Amount || s.AltName != tt.code.AltName {
				t.Fatalf("merchant summary %+v does not match %+v", s, tt.code)
			}
		})
	}
}

func stripOffsets(objs []Object) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		o.Offset = 0
		if o.Objects != nil {
			o.Objects = stripOffsets(o.Objects)
		}
		out[i] = o
	}
	return out
}

func TestParseMPM_LengthsCountCharacters(t *testing.T) {
	// EMV MPM (the spec example): "64200002ZH0104最佳运输0202北京" has length 04 for four Chinese
	// characters, and the template's length 20 counts characters too.
	body := "000201010211" + "29300012D156000000000510A93FO3230Q" + "52044111" + "5303156" + "5802CN" +
		"5914BEST TRANSPORT" + "6007BEIJING" + "64200002ZH0104最佳运输0202北京"
	m, err := ParseMPM(withCRC(body), Strict)
	if err != nil {
		t.Fatal(err)
	}
	lang, _ := m.Get("64")
	name, _ := lang.Get("01")
	city, _ := lang.Get("02")
	if got, want := name.Value, "最佳运输"; got != want {
		t.Errorf("64.01 = %q, want %q", got, want)
	}
	if got, want := city.Value, "北京"; got != want {
		t.Errorf("64.02 = %q, want %q", got, want)
	}
	crc, _ := m.Get("63")
	if got, want := crc.Offset, utf8.RuneCountInString(body); got != want {
		t.Errorf("offset of tag 63 = %d characters, want %d", got, want)
	}
}

func TestParseMPM_Errors(t *testing.T) {
	valid := "000201010211" + "26160012D15600000000" + "52044111" + "5303156" + "5802CN" + "5904SHOP" + "6007BEIJING"
	tests := []struct {
		name     string
		payload  string
		sentinel error
		wantMsg  string // a part of the message: names the tag and the rule
		lenient  bool   // also an error in lenient mode
	}{
		{"empty", "", ErrMalformed, "empty", true},
		{"truncated object", "000201010", ErrMalformed, "truncated", true},
		{"non-digit ID", "0002010A02", ErrMalformed, "two digits", true},
		{"non-digit length", "00020101X211", ErrMalformed, "tag 01 at offset 6: length \"X2\"", true},
		{"length past end", "0002010150", ErrMalformed, "runs past the end", true},
		{"not starting with 00", withCRC("0102115802CN"), ErrMalformed, "must start with", true},
		{"no CRC", "000201" + "5802CN", ErrMalformed, "must end with the CRC", true},
		{"CRC mismatch", valid + "63041234", ErrCRC, "tag 63", true},
		{"CRC not hex", valid + "6304ZZZZ", ErrCRC, "four hex digits", true},
		{"duplicate top-level ID", withCRC(valid + "5802CN"), ErrMalformed, "duplicate", true},
		{"duplicate inside template", withCRC(strings.Replace(valid, "26160012D15600000000", "26240012D1560000000000020000", 1)), ErrMalformed, "tag 26.00", true},
		{"malformed template", withCRC(strings.Replace(valid, "26160012D15600000000", "2605ABCDE", 1)), ErrMalformed, "26", true},
		{"invalid UTF-8", withCRC(valid + "5903\xff\xfe\xfd"), ErrMalformed, "UTF-8", true},
		{"too large", strings.Repeat("0", MaxPayload+1), ErrMalformed, "more than any QR code holds", true},
		{"format indicator not 01", withCRC(strings.Replace(valid, "000201", "000202", 1)), ErrRule, "tag 00 at offset 0", false},
		{"initiation 13", withCRC(strings.Replace(valid, "010211", "010213", 1)), ErrRule, "tag 01", false},
		{"amount with comma", withCRC(valid + "540512,50"), ErrRule, `tag 54 at offset 72: amount "12,50" must be digits with at most one '.'`, false},
		{"amount two dots", withCRC(valid + "54051.2.5"), ErrRule, "tag 54", false},
		{"amount zero", withCRC(valid + "54040.00"), ErrRule, "must not be zero", false},
		{"amount negative", withCRC(valid + "5403-12"), ErrRule, "tag 54", false},
		{"amount too long", withCRC(valid + "5414123456789012.5"), ErrRule, "tag 54", false},
		{"MCC three digits", withCRC(strings.Replace(valid, "52044111", "5203411", 1)), ErrRule, "tag 52", false},
		{"MCC letters", withCRC(strings.Replace(valid, "52044111", "5204ABCD", 1)), ErrRule, "digits only", false},
		{"currency alpha", withCRC(strings.Replace(valid, "5303156", "5303CNY", 1)), ErrRule, "tag 53", false},
		{"country lowercase", withCRC(strings.Replace(valid, "5802CN", "5802cn", 1)), ErrRule, "tag 58", false},
		{"name too long", withCRC(strings.Replace(valid, "5904SHOP", "5926"+strings.Repeat("A", 26), 1)), ErrRule, "tag 59", false},
		{"name not ans", withCRC(strings.Replace(valid, "5904SHOP", "5902便利", 1)), ErrRule, "common character set", false},
		{"city too long", withCRC(strings.Replace(valid, "6007BEIJING", "6016"+strings.Repeat("C", 16), 1)), ErrRule, "tag 60", false},
		{"missing name", withCRC(strings.Replace(valid, "5904SHOP", "", 1)), ErrRule, "tag 59: merchant name is mandatory", false},
		{"missing MCC", withCRC(strings.Replace(valid, "52044111", "", 1)), ErrRule, "tag 52", false},
		{"no merchant account", withCRC(strings.Replace(valid, "26160012D15600000000", "", 1)), ErrRule, "merchant account", false},
		{"template without GUI", withCRC(strings.Replace(valid, "26160012D15600000000", "26140510A93FO3230Q", 1)), ErrRule, "globally unique identifier", false},
		{"GUI too long", withCRC(strings.Replace(valid, "26160012D15600000000", "263700330"+strings.Repeat("A", 32), 1)), ErrRule, "tag 26.00", false},
		{"RFU ID 65", withCRC(valid + "6502XX"), ErrRule, "reserved", false},
		{"fee without indicator", withCRC(valid + "56031.0"), ErrRule, "tag 56", false},
		{"indicator 02 without fee", withCRC(valid + "550202"), ErrRule, "tag 56", false},
		{"indicator 03 with fixed fee", withCRC(valid + "550203" + "56031.0"), ErrRule, "tag 56", false},
		{"percentage over 99.99", withCRC(valid + "550203" + "5703100"), ErrRule, "tag 57", false},
		{"tip indicator 04", withCRC(valid + "550204"), ErrRule, "tag 55", false},
		{"62 RFU sub-ID", withCRC(valid + "62061202AB"), ErrRule, "tag 62.12", false},
		{"62 consumer data request X", withCRC(valid + "62070903AXE"), ErrRule, "tag 62.09", false},
		{"62 consumer data request repeated", withCRC(valid + "62060902AA"), ErrRule, "repeats", false},
		{"62 bill number too long", withCRC(valid + "62300126" + strings.Repeat("B", 26)), ErrRule, "tag 62.01", false},
		{"64 without name", withCRC(valid + "64060002ZH"), ErrRule, "tag 64.01", false},
		{"64 RFU sub-ID", withCRC(valid + "64200002ZH0104最佳运输0302北京"), ErrRule, "tag 64.03", false},
		{"64 name too long", withCRC(valid + "64360002ZH0126" + strings.Repeat("最", 26)), ErrRule, "tag 64.01", false},
		{"empty value", withCRC(valid + "6100"), ErrRule, "tag 61", false},
		{"lowercase CRC in strict", lowerCRC(withCRC(valid)), ErrRule, "uppercase", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMPM(tt.payload, Strict)
			if err == nil {
				t.Fatalf("ParseMPM(%q, Strict) succeeded, want an error", tt.payload)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("error %q does not wrap %v", err, tt.sentinel)
			}
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Errorf("error %q does not match posagent.ErrInvalidInput", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
			m, lerr := ParseMPM(tt.payload, Lenient)
			switch {
			case tt.lenient && lerr == nil:
				t.Errorf("lenient parse succeeded; a structural error must fail in both modes")
			case !tt.lenient && lerr != nil:
				t.Errorf("lenient parse failed: %v; a field rule must become a warning", lerr)
			case !tt.lenient && len(m.Warnings) == 0:
				t.Errorf("lenient parse gave no warning for a broken rule")
			}
		})
	}
}

func lowerCRC(p string) string { return p[:len(p)-4] + strings.ToLower(p[len(p)-4:]) }

func TestParseMPM_LenientKeepsFieldCodes(t *testing.T) {
	// Field codes bend the rules: no MCC, a 30-character name, lowercase CRC.
	body := "000201010211" + "26160012D15600000000" + "5303156" + "5802CN" +
		"5930" + strings.Repeat("L", 30) + "6007BEIJING"
	p := lowerCRC(withCRC(body))
	if strings.ToUpper(p) == p {
		t.Skip("CRC has no letters; nothing to lowercase")
	}
	m, err := ParseMPM(p, Lenient)
	if err != nil {
		t.Fatalf("lenient parse: %v", err)
	}
	ids := map[string]bool{}
	for _, w := range m.Warnings {
		ids[w.ID] = true
	}
	for _, id := range []string{"52", "59", "63"} {
		if !ids[id] {
			t.Errorf("no warning for tag %s; warnings %v", id, m.Warnings)
		}
	}
	if got, want := m.Merchant().Name, strings.Repeat("L", 30); got != want {
		t.Errorf("name = %q, want %q", got, want)
	}
}

func TestBuildMPM_Refuses(t *testing.T) {
	good := shopCode().Objects()
	tests := []struct {
		name    string
		mutate  func([]Object) []Object
		wantMsg string
	}{
		{"CRC given", func(o []Object) []Object { return append(o, Object{ID: "63", Value: "ABCD"}) }, "leave tag 63 out"},
		{"00 not first", func(o []Object) []Object { return o[1:] }, "must start"},
		{"duplicate", func(o []Object) []Object { return append(o, Object{ID: "59", Value: "X"}) }, "duplicate"},
		{"bad ID", func(o []Object) []Object { return append(o, Object{ID: "5", Value: "X"}) }, "two digits"},
		{"value over 99", func(o []Object) []Object {
			return append(o, Object{ID: "81", Objects: []Object{{ID: "00", Value: strings.Repeat("A", 100)}}})
		}, "at most 99"},
		{"nested template", func(o []Object) []Object {
			return append(o, Object{ID: "81", Objects: []Object{{ID: "00", Objects: []Object{}}}})
		}, "one level"},
		{"template at primitive ID", func(o []Object) []Object {
			return append(o, Object{ID: "02", Objects: []Object{{ID: "00", Value: "X"}}})
		}, "not a template"},
		{"primitive at template ID", func(o []Object) []Object { return append(o, Object{ID: "80", Value: "X"}) }, "is a template"},
		{"amount rule", func(o []Object) []Object {
			for i := range o {
				if o[i].ID == "54" {
					o[i].Value = "12,50"
				}
			}
			return o
		}, `amount "12,50"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.mutate(append([]Object(nil), good...))
			_, err := BuildMPM(objs)
			if err == nil {
				t.Fatal("BuildMPM succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseAccount(t *testing.T) {
	tests := []struct {
		in      string
		want    Object
		wantErr bool
	}{
		{"26=D15600000000,05=A93FO3230Q", Object{ID: "26", Objects: []Object{{ID: "00", Value: "D15600000000", Offset: -1}, {ID: "05", Value: "A93FO3230Q", Offset: -1}}, Offset: -1}, false},
		{"15=6200000000", Object{ID: "15", Value: "6200000000", Offset: -1}, false},
		{"15=1,01=2", Object{}, true},
		{"52=1", Object{}, true},
		{"26=GUI,X=1", Object{}, true},
		{"nonsense", Object{}, true},
	}
	for _, tt := range tests {
		got, err := ParseAccount(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAccount(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAccount(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// randomObjects makes a random tree near a valid code: the objects of shopCode with some
// dropped, some values replaced and some objects added, so that it satisfies the field
// rules about half of the time.
func randomObjects(r *rand.Rand) []Object {
	alphabet := []rune("ABCXYZ0189 .,-*/最北é€😀")
	value := func(max int) string {
		n := 1 + r.IntN(max)
		b := make([]rune, n)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	base := shopCode().Objects()
	objs := []Object{base[0]}
	used := map[string]bool{"00": true}
	for _, o := range base[1:] {
		switch r.IntN(10) {
		case 0: // drop it
			continue
		case 1: // replace its value
			if o.IsTemplate() {
				o.Objects = append(append([]Object(nil), o.Objects...), Object{ID: twoDigit(r.IntN(100)), Value: value(20)})
			} else {
				o.Value = value(16)
			}
		}
		used[o.ID] = true
		objs = append(objs, o)
	}
	for range r.IntN(4) {
		id := twoDigit(1 + r.IntN(99))
		if used[id] || id == "63" {
			continue
		}
		used[id] = true
		o := Object{ID: id}
		if isTemplateID(id) {
			o.Objects = []Object{{ID: "00", Value: value(20)}}
			if r.IntN(3) == 0 {
				o.Objects = append(o.Objects, Object{ID: twoDigit(1 + r.IntN(99)), Value: value(20)})
			}
		} else {
			o.Value = value(12)
		}
		objs = append(objs, o)
	}
	return objs
}

// rawEncode writes objects with no checks at all, as a careless generator would.
func rawEncode(objs []Object) string {
	var b strings.Builder
	for _, o := range objs {
		v := o.Value
		if o.IsTemplate() {
			v = rawEncode(o.Objects)
		}
		b.WriteString(o.ID + twoDigit(utf8.RuneCountInString(v)) + v)
	}
	return b.String()
}

// TestBuildMPM_Property: BuildMPM accepts exactly what strict parsing accepts, whatever it
// accepts parses back to the same objects, and lenient parsing reads what it refuses for a
// field rule.
func TestBuildMPM_Property(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	built, refused := 0, 0
	for range 5000 {
		objs := randomObjects(r)
		p, err := BuildMPM(objs)
		raw := withCRC(rawEncode(objs))
		_, strictErr := ParseMPM(raw, Strict)
		if (err == nil) != (strictErr == nil) {
			t.Fatalf("BuildMPM error %v but strict parse of the same objects %q: %v", err, raw, strictErr)
		}
		if err != nil {
			refused++
			if errors.Is(err, ErrRule) {
				if m, lerr := ParseMPM(raw, Lenient); lerr != nil || len(m.Warnings) == 0 {
					t.Fatalf("refused %q for a rule (%v) but lenient parse gives %v, %d warnings", raw, err, lerr, len(m.Warnings))
				}
			}
			continue
		}
		built++
		if p != raw {
			t.Fatalf("BuildMPM wrote %q, want %q", p, raw)
		}
		m, err := ParseMPM(p, Strict)
		if err != nil {
			t.Fatalf("built %q but strict parse fails: %v", p, err)
		}
		if got, want := stripOffsets(m.Objects[:len(m.Objects)-1]), stripOffsets(objs); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", p, got, want)
		}
	}
	if built < 200 || refused < 200 {
		t.Fatalf("generator is lopsided: %d built, %d refused", built, refused)
	}
	t.Logf("%d built and parsed back, %d refused", built, refused)
}

// FormatAmount is a test helper alias that keeps money out of floats.
func FormatAmount(minor int64, digits int) string { return posagent.FormatMinor(minor, digits) }
