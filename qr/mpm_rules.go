package qr

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// The field rules of EMV QRCPS Merchant-Presented Mode v1.1, applied to a tree of objects.
// ParseMPM runs them after tokenizing (errors in Strict mode, warnings in Lenient mode) and
// BuildMPM runs them before encoding, so a built code always parses back strictly.

// format is a value's character set: numeric, the EMV common character set, or any Unicode.
type format int

const (
	fmtN   format = iota // digits "0"–"9"
	fmtANS               // alphanumeric special: printable ASCII 0x20–0x7E
	fmtS                 // string: any Unicode characters
)

// field is the rule for one primitive: its name, character set and length bounds.
type field struct {
	name     string
	format   format
	min, max int
}

// topFields are the primitives at the top level with fixed rules. Merchant account
// information 02–25 is checked separately; templates have their own tables.
var topFields = map[string]field{
	"00": {"payload format indicator", fmtN, 2, 2},
	"01": {"point of initiation method", fmtN, 2, 2},
	"52": {"merchant category code", fmtN, 4, 4},
	"53": {"transaction currency", fmtN, 3, 3},
	"54": {"transaction amount", fmtANS, 1, 13},
	"55": {"tip or convenience indicator", fmtN, 2, 2},
	"56": {"convenience fee fixed", fmtANS, 1, 13},
	"57": {"convenience fee percentage", fmtANS, 1, 5},
	"58": {"country code", fmtANS, 2, 2},
	"59": {"merchant name", fmtANS, 1, 25},
	"60": {"merchant city", fmtANS, 1, 15},
	"61": {"postal code", fmtANS, 1, 10},
	"63": {"CRC", fmtANS, 4, 4},
}

// additionalFields are the sub-IDs of the additional data field template (62).
var additionalFields = map[string]field{
	"01": {"bill number", fmtANS, 1, 25},
	"02": {"mobile number", fmtANS, 1, 25},
	"03": {"store label", fmtANS, 1, 25},
	"04": {"loyalty number", fmtANS, 1, 25},
	"05": {"reference label", fmtANS, 1, 25},
	"06": {"customer label", fmtANS, 1, 25},
	"07": {"terminal label", fmtANS, 1, 25},
	"08": {"purpose of transaction", fmtANS, 1, 25},
	"09": {"additional consumer data request", fmtANS, 1, 3},
	"10": {"merchant tax ID", fmtANS, 1, 20},
	"11": {"merchant channel", fmtANS, 3, 3},
}

// languageFields are the sub-IDs of the merchant information language template (64).
var languageFields = map[string]field{
	"00": {"language preference", fmtANS, 2, 2},
	"01": {"alternate merchant name", fmtS, 1, 25},
	"02": {"alternate merchant city", fmtS, 1, 15},
}

// checker collects rule violations in payload order.
type checker struct{ errs []*ParseError }

func (c *checker) addf(id string, off int, format string, args ...any) {
	c.errs = append(c.errs, ruleErr(id, off, format, args...))
}

// field checks a primitive's character set and length (in characters).
func (c *checker) field(path string, o Object, f field) {
	n := utf8.RuneCountInString(o.Value)
	switch {
	case n == 0:
		c.addf(path, o.Offset, "%s is empty: a data object must have a value", f.name)
		return
	case n < f.min || n > f.max:
		if f.min == f.max {
			c.addf(path, o.Offset, "%s %q must be %d characters, not %d", f.name, o.Value, f.min, n)
		} else {
			c.addf(path, o.Offset, "%s %q must be %d to %d characters, not %d", f.name, o.Value, f.min, f.max, n)
		}
	}
	switch f.format {
	case fmtN:
		if !allDigits(o.Value) {
			c.addf(path, o.Offset, "%s %q must be digits only", f.name, o.Value)
		}
	case fmtANS:
		if i := strings.IndexFunc(o.Value, notANS); i >= 0 {
			r, _ := utf8.DecodeRuneInString(o.Value[i:])
			c.addf(path, o.Offset, "%s %q has %q, outside the EMV common character set (printable ASCII)", f.name, o.Value, r)
		}
	}
}

func notANS(r rune) bool { return r < 0x20 || r > 0x7E }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// checkRules applies every field rule to a tokenized payload (or to objects about to be
// built) and returns the violations in payload order.
func checkRules(objs []Object) []*ParseError {
	c := &checker{}
	for _, o := range objs {
		if o.IsTemplate() != isTemplateID(o.ID) {
			if o.IsTemplate() {
				c.addf(o.ID, o.Offset, "ID %s is a primitive data object, not a template", o.ID)
			} else {
				c.addf(o.ID, o.Offset, "ID %s is a template: it must hold data objects", o.ID)
			}
			continue
		}
		n := idNum(o.ID)
		switch {
		case n == 0:
			c.field(o.ID, o, topFields[o.ID])
			if o.Value != "01" {
				c.addf(o.ID, o.Offset, "payload format indicator is %q, must be \"01\"", o.Value)
			}
		case n == 1:
			c.field(o.ID, o, topFields[o.ID])
			if o.Value != "11" && o.Value != "12" {
				c.addf(o.ID, o.Offset, "point of initiation method %q must be \"11\" (static) or \"12\" (dynamic)", o.Value)
			}
		case n >= 2 && n <= 25:
			c.field(o.ID, o, field{"merchant account information", fmtANS, 1, 99})
		case n >= 26 && n <= 51, n >= 80 && n <= 99:
			c.accountTemplate(o)
		case n == 54, n == 56:
			c.field(o.ID, o, topFields[o.ID])
			c.amount(o.ID, o)
		case n == 57:
			c.field(o.ID, o, topFields[o.ID])
			c.percentage(o)
		case n == 58:
			c.field(o.ID, o, topFields[o.ID])
			if !isUpperAlpha(o.Value, 2) {
				c.addf(o.ID, o.Offset, "country code %q must be two uppercase letters (ISO 3166-1 alpha-2)", o.Value)
			}
		case n == 62:
			c.additionalData(o)
		case n == 64:
			c.languageTemplate(o)
		case n >= 65 && n <= 79:
			c.addf(o.ID, o.Offset, "ID %s is reserved for future use by EMVCo and must not be present", o.ID)
		default:
			if f, ok := topFields[o.ID]; ok {
				c.field(o.ID, o, f)
			}
		}
	}
	c.presence(objs)
	return c.errs
}

// presence checks the mandatory and conditional data objects of the top level.
func (c *checker) presence(objs []Object) {
	end := 0
	if len(objs) > 0 {
		last := objs[len(objs)-1]
		end = last.Offset
	}
	hasAccount := false
	for _, o := range objs {
		if n := idNum(o.ID); n >= 2 && n <= 51 {
			hasAccount = true
		}
	}
	if !hasAccount {
		c.addf("", end, "no merchant account information: at least one of IDs 02–51 is required")
	}
	for _, id := range []string{"52", "53", "58", "59", "60"} {
		if _, ok := find(objs, id); !ok {
			c.addf(id, -1, "%s is mandatory but missing", topFields[id].name)
		}
	}
	tip, hasTip := find(objs, "55")
	for _, cond := range []struct{ id, indicator string }{{"56", "02"}, {"57", "03"}} {
		o, has := find(objs, cond.id)
		switch {
		case has && (!hasTip || tip.Value != cond.indicator):
			c.addf(cond.id, o.Offset, "%s is present but tag 55 is not %q", topFields[cond.id].name, cond.indicator)
		case !has && hasTip && tip.Value == cond.indicator:
			c.addf(cond.id, tip.Offset, "tag 55 is %q, so %s (tag %s) is required", tip.Value, topFields[cond.id].name, cond.id)
		}
	}
	if hasTip && tip.Value != "01" && tip.Value != "02" && tip.Value != "03" {
		c.addf("55", tip.Offset, "tip or convenience indicator %q must be \"01\", \"02\" or \"03\"", tip.Value)
	}
}

// amount checks the syntax of a transaction amount or fixed fee: digits with at most one
// '.' as the decimal mark, and not zero.
func (c *checker) amount(id string, o Object) {
	v := o.Value
	whole, frac, _ := strings.Cut(v, ".")
	if v == "" || (whole == "" && frac == "") || !digitsOrEmpty(whole) || !digitsOrEmpty(frac) {
		c.addf(id, o.Offset, "amount %q must be digits with at most one '.'", v)
		return
	}
	if strings.Trim(whole+frac, "0") == "" {
		c.addf(id, o.Offset, "amount %q must not be zero: leave tag %s out to let the customer enter the amount", v, id)
	}
}

// percentage checks a convenience fee percentage: a value from 00.01 to 99.99.
func (c *checker) percentage(o Object) {
	v := o.Value
	whole, frac, _ := strings.Cut(v, ".")
	if v == "" || !digitsOrEmpty(whole) || !digitsOrEmpty(frac) || len(frac) > 2 || (whole == "" && frac == "") {
		c.addf("57", o.Offset, "convenience fee percentage %q must be a percentage from 00.01 to 99.99", v)
		return
	}
	f, err := strconv.ParseFloat("0"+whole+"."+frac+"0", 64)
	if err != nil || f < 0.01 || f > 99.99 {
		c.addf("57", o.Offset, "convenience fee percentage %q must be from 00.01 to 99.99", v)
	}
}

func digitsOrEmpty(s string) bool { return s == "" || allDigits(s) }

func isUpperAlpha(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// accountTemplate checks a merchant account information template (26–51) or an unreserved
// template (80–99): a globally unique identifier in sub-ID 00, then ans values.
func (c *checker) accountTemplate(o Object) {
	if len(o.Objects) == 0 {
		c.addf(o.ID, o.Offset, "template is empty: it must hold a globally unique identifier (sub-ID 00)")
		return
	}
	if _, ok := o.Get("00"); !ok {
		c.addf(o.ID, o.Offset, "template has no globally unique identifier (sub-ID 00)")
	}
	for _, s := range o.Objects {
		path := o.ID + "." + s.ID
		if s.ID == "00" {
			c.field(path, s, field{"globally unique identifier", fmtANS, 1, 32})
			continue
		}
		c.field(path, s, field{"payment network data", fmtS, 1, 99})
	}
}

// additionalData checks the additional data field template (62).
func (c *checker) additionalData(o Object) {
	if len(o.Objects) == 0 {
		c.addf(o.ID, o.Offset, "additional data template is empty: leave tag 62 out instead")
	}
	for _, s := range o.Objects {
		path := "62." + s.ID
		n := idNum(s.ID)
		if f, ok := additionalFields[s.ID]; ok {
			c.field(path, s, f)
			switch s.ID {
			case "09":
				c.consumerDataRequest(path, s)
			case "11":
				if !allDigits(s.Value) && utf8.RuneCountInString(s.Value) == 3 {
					c.addf(path, s.Offset, "merchant channel %q must be three digits (media, location, presence)", s.Value)
				}
			}
			continue
		}
		if n >= 50 && n <= 99 {
			c.field(path, s, field{"payment system specific data", fmtS, 1, 99})
			continue
		}
		c.addf(path, s.Offset, "sub-ID %s of the additional data template is reserved for future use and must not be present", s.ID)
	}
}

// consumerDataRequest checks sub-ID 09: any of "A" (address), "M" (mobile), "E" (email),
// each at most once.
func (c *checker) consumerDataRequest(path string, s Object) {
	seen := map[rune]bool{}
	for _, r := range s.Value {
		if r != 'A' && r != 'M' && r != 'E' {
			c.addf(path, s.Offset, "additional consumer data request %q may only hold \"A\", \"M\" and \"E\"", s.Value)
			return
		}
		if seen[r] {
			c.addf(path, s.Offset, "additional consumer data request %q repeats %q", s.Value, r)
			return
		}
		seen[r] = true
	}
}

// languageTemplate checks the merchant information language template (64).
func (c *checker) languageTemplate(o Object) {
	for _, id := range []string{"00", "01"} {
		if _, ok := o.Get(id); !ok {
			c.addf("64."+id, o.Offset, "%s is mandatory in the language template but missing", languageFields[id].name)
		}
	}
	for _, s := range o.Objects {
		path := "64." + s.ID
		f, ok := languageFields[s.ID]
		if !ok {
			c.addf(path, s.Offset, "sub-ID %s of the language template is reserved for future use and must not be present", s.ID)
			continue
		}
		c.field(path, s, f)
		if s.ID == "00" && !isLowerOrUpperAlpha(s.Value) {
			c.addf(path, s.Offset, "language preference %q must be two letters (ISO 639-1)", s.Value)
		}
	}
}

func isLowerOrUpperAlpha(s string) bool {
	if len(s) != 2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < 'a' || s[i] > 'z') && (s[i] < 'A' || s[i] > 'Z') {
			return false
		}
	}
	return true
}
