package qr

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzParseMPM: no panic and no hang on any input; every error is a *ParseError with a
// sentinel; what parses strictly rebuilds to the same bytes and parses leniently without
// warnings; what parses leniently has every structural guarantee (00 first, 63 last).
func FuzzParseMPM(f *testing.F) {
	f.Add(emvSpecExample)
	f.Add(withCRC("000201010211" + "26160012D15600000000" + "52044111" + "5303156" + "5802CN" + "5904SHOP" + "6007BEIJING"))
	f.Add("00020101021229370016A000000677010111011300668999999995802TH53037646304FE29")
	f.Add(withCRC("0002010102118202XY"))
	f.Add("0002")
	f.Fuzz(func(t *testing.T, payload string) {
		for _, mode := range []Mode{Strict, Lenient} {
			m, err := ParseMPM(payload, mode)
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrCRC) || errors.Is(err, ErrRule)) {
					t.Fatalf("error %v (%T) is not a ParseError with a sentinel", err, err)
				}
				if mode == Lenient && errors.Is(err, ErrRule) {
					t.Fatalf("lenient mode returned a rule error: %v", err)
				}
				continue
			}
			if m.Objects[0].ID != "00" || m.Objects[len(m.Objects)-1].ID != "63" {
				t.Fatalf("parsed %q without 00 first and 63 last", payload)
			}
			if mode == Lenient {
				continue
			}
			rebuilt, err := BuildMPM(m.Objects[:len(m.Objects)-1])
			if err != nil {
				t.Fatalf("strictly parsed %q but cannot rebuild it: %v", payload, err)
			}
			if rebuilt != payload {
				t.Fatalf("rebuilt %q, want %q", rebuilt, payload)
			}
			l, err := ParseMPM(payload, Lenient)
			if err != nil || len(l.Warnings) != 0 {
				t.Fatalf("strictly valid %q: lenient gives %v, %v", payload, err, l.Warnings)
			}
		}
	})
}

// FuzzBuildMPM: building from arbitrary objects never panics, and what builds parses back
// strictly to the same objects.
func FuzzBuildMPM(f *testing.F) {
	f.Add("BEST TRANSPORT", "BEIJING", "23.72", "D15600000000", "最佳运输")
	f.Add("", "", "", "", "")
	f.Add("X", "Y", "12,50", "A000000677010111", "é")
	f.Fuzz(func(t *testing.T, name, city, amount, gui, alt string) {
		mc := shopCode()
		mc.Name, mc.City, mc.Amount, mc.AltName = name, city, amount, alt
		mc.Accounts = []Object{{ID: "26", Objects: []Object{{ID: "00", Value: gui}}}}
		objs := mc.Objects()
		p, err := BuildMPM(objs)
		if err != nil {
			return
		}
		m, err := ParseMPM(p, Strict)
		if err != nil {
			t.Fatalf("built %q but strict parse fails: %v", p, err)
		}
		if got, want := stripOffsets(m.Objects[:len(m.Objects)-1]), stripOffsets(objs); !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip of %q\n got %+v\nwant %+v", p, got, want)
		}
	})
}

// FuzzClassify: the classifier never panics, always says why it did not recognise a code,
// and never lets a wallet code through unmasked.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"134567890123456789", "]Q1286543210987654321\r\n", "6212345678901234567",
		"0112345678901234567", "https://qr.alipay.com/bax01234", "weixin://wxpay/bizpayurl?pr=abc",
		emvSpecExample, "hQVDUFYwMWEaTwegAAAAVVVVVw8SNFZ4kBI0WNGRIgESNF8=", " 1345 6789 0123 4567 89 ", "]", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		cl := Classify(raw)
		if cl.Kind == KindUnknown && cl.Reason == "" {
			t.Fatalf("unknown without a reason for %q", raw)
		}
		if cl.Kind == KindWalletCode && len(cl.Code) > 4 && cl.Masked == cl.Code {
			t.Fatalf("wallet code shown unmasked: %q", cl.Masked)
		}
	})
}
