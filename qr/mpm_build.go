package qr

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// BuildMPM encodes data objects as an EMV merchant-presented payload and appends the CRC
// (tag 63, which the caller leaves out). Objects are written in the order given; "00" must
// come first. BuildMPM refuses anything ParseMPM would refuse in Strict mode, with the same
// *ParseError, so every payload it returns parses back to the same objects.
func BuildMPM(objs []Object) (string, error) {
	var b strings.Builder
	pos := 0
	seen := map[string]bool{}
	out := make([]Object, 0, len(objs)+1)
	for i, o := range objs {
		if idNum(o.ID) < 0 {
			return "", malformed("", pos, "data object ID %q must be two digits", o.ID)
		}
		if o.ID == "63" {
			return "", ruleErr("63", pos, "the CRC is computed by the encoder: leave tag 63 out")
		}
		if i == 0 && o.ID != "00" {
			return "", malformed(o.ID, 0, "payload must start with the payload format indicator (tag 00)")
		}
		if seen[o.ID] {
			return "", malformed(o.ID, pos, "duplicate data object: ID %s appears twice", o.ID)
		}
		seen[o.ID] = true
		enc, placed, err := encodeObject(o, pos, "")
		if err != nil {
			return "", err
		}
		b.WriteString(enc)
		pos += utf8.RuneCountInString(enc)
		out = append(out, placed)
	}
	if len(out) == 0 {
		return "", malformed("", 0, "no data objects to encode")
	}
	b.WriteString("6304")
	crc := crcHex(CRC16([]byte(b.String())))
	b.WriteString(crc)
	out = append(out, Object{ID: "63", Value: crc, Offset: pos})
	if n := pos + 8; n > maxMPMChars {
		return "", ruleErr("", -1, "payload is %d characters, more than the %d EMV allows", n, maxMPMChars)
	}
	if errs := checkRules(out); len(errs) > 0 {
		return "", errs[0]
	}
	return b.String(), nil
}

// encodeObject writes one data object at character offset pos and returns its encoding and
// a copy with offsets filled in. Templates hold primitives only.
func encodeObject(o Object, pos int, parent string) (string, Object, error) {
	path := joinPath(parent, o.ID)
	o.Offset = pos
	value := o.Value
	if o.IsTemplate() {
		if parent != "" {
			return "", o, malformed(path, pos, "templates nest one level only")
		}
		if o.Value != "" {
			return "", o, malformed(path, pos, "a template holds data objects, not a value")
		}
		var b strings.Builder
		var seen [100]bool
		children := make([]Object, 0, len(o.Objects))
		inner := 0 // characters written so far inside the template
		for _, s := range o.Objects {
			n := idNum(s.ID)
			if n < 0 {
				return "", o, malformed(o.ID, pos, "data object ID %q must be two digits", s.ID)
			}
			if seen[n] {
				return "", o, malformed(joinPath(o.ID, s.ID), pos, "duplicate data object: ID %s appears twice", s.ID)
			}
			seen[n] = true
			enc, placed, err := encodeObject(s, pos+4+inner, o.ID)
			if err != nil {
				return "", o, err
			}
			b.WriteString(enc)
			inner += utf8.RuneCountInString(enc)
			children = append(children, placed)
		}
		o.Objects = children
		value = b.String()
	}
	n := utf8.RuneCountInString(value)
	if n > 99 {
		return "", o, malformed(path, pos, "value is %d characters; a data object holds at most 99", n)
	}
	if !utf8.ValidString(value) {
		return "", o, malformed(path, pos, "value is not valid UTF-8")
	}
	return o.ID + twoDigit(n) + value, o, nil
}

// twoDigit formats 0–99 as two digits.
func twoDigit(n int) string { return string([]byte{byte('0' + n/10), byte('0' + n%10)}) }

// MerchantCode describes a merchant-presented code in the terms a merchant knows; Objects
// turns it into data objects for BuildMPM.
type MerchantCode struct {
	Name     string // 59, printable ASCII, at most 25 characters
	City     string // 60, at most 15 characters
	Country  string // 58, ISO 3166-1 alpha-2
	MCC      string // 52, four digits
	Currency string // 53, ISO 4217 numeric
	// Amount (54) as a decimal ("23.72"); empty for a static code where the customer
	// enters the amount.
	Amount     string
	PostalCode string // 61, optional
	// Accounts are merchant account information objects: primitives 02–25 or templates
	// 26–51 with a globally unique identifier in sub-ID 00.
	Accounts []Object
	// Additional are sub-objects of the additional data template 62 (01 bill number, 05
	// reference label, 07 terminal label, …).
	Additional []Object
	// AltLanguage (ISO 639-1), AltName and AltCity fill the language template 64; they may
	// use any Unicode characters.
	AltLanguage, AltName, AltCity string
	// Dynamic marks a code for one transaction (01 = "12"); otherwise it is static ("11").
	Dynamic bool
}

// Objects returns the data objects of the code in ascending ID order, ready for BuildMPM.
func (m MerchantCode) Objects() []Object {
	initiation := "11"
	if m.Dynamic {
		initiation = "12"
	}
	objs := []Object{{ID: "00", Value: "01", Offset: -1}, {ID: "01", Value: initiation, Offset: -1}}
	accounts := append([]Object(nil), m.Accounts...)
	sort.SliceStable(accounts, func(i, j int) bool { return accounts[i].ID < accounts[j].ID })
	objs = append(objs, accounts...)
	add := func(id, v string) {
		if v != "" {
			objs = append(objs, Object{ID: id, Value: v, Offset: -1})
		}
	}
	add("52", m.MCC)
	add("53", m.Currency)
	add("54", m.Amount)
	add("58", m.Country)
	add("59", m.Name)
	add("60", m.City)
	add("61", m.PostalCode)
	if len(m.Additional) > 0 {
		sub := append([]Object(nil), m.Additional...)
		sort.SliceStable(sub, func(i, j int) bool { return sub[i].ID < sub[j].ID })
		objs = append(objs, Object{ID: "62", Objects: sub, Offset: -1})
	}
	if m.AltLanguage != "" || m.AltName != "" || m.AltCity != "" {
		var sub []Object
		for _, kv := range [][2]string{{"00", m.AltLanguage}, {"01", m.AltName}, {"02", m.AltCity}} {
			if kv[1] != "" {
				sub = append(sub, Object{ID: kv[0], Value: kv[1], Offset: -1})
			}
		}
		objs = append(objs, Object{ID: "64", Objects: sub, Offset: -1})
	}
	return objs
}

// ParseAccount reads a merchant account given as "ID=VALUE" for a primitive (02–25) or
// "ID=GUI[,SUB=VALUE...]" for a template (26–51), as `posagent qr mpm --account` takes it:
// "26=D15600000000,05=A93FO3230Q".
func ParseAccount(s string) (Object, error) {
	parts := strings.Split(s, ",")
	id, first, ok := strings.Cut(parts[0], "=")
	n := idNum(id)
	if !ok || n < 2 || n > 51 {
		return Object{}, fmt.Errorf("account %q must start with ID=VALUE, the ID from 02 to 51: %w", s, ErrRule)
	}
	if n <= 25 {
		if len(parts) > 1 {
			return Object{}, fmt.Errorf("account %q: IDs 02–25 are primitives and take one value: %w", s, ErrRule)
		}
		return Object{ID: id, Value: first, Offset: -1}, nil
	}
	o := Object{ID: id, Objects: []Object{{ID: "00", Value: first, Offset: -1}}, Offset: -1}
	for _, p := range parts[1:] {
		sub, v, ok := strings.Cut(p, "=")
		if !ok || idNum(sub) < 1 {
			return Object{}, fmt.Errorf("account %q: %q must be SUB=VALUE with a two-digit sub-ID from 01 to 99: %w", s, p, ErrRule)
		}
		o.Objects = append(o.Objects, Object{ID: sub, Value: v, Offset: -1})
	}
	return o, nil
}
