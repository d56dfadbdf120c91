package qr

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// EMVCo consumer-presented mode (EMV QRCPS CPM v1.0/v1.1): the code a wallet app shows and
// the terminal scans. It is base64 of BER-TLV:
//
//	85 "CPV01"                         Payload Format Indicator, first
//	61 Application Template            one or two, each with 4F (ADF Name)
//	   4F 50 57 5A 5F20 5F2D 5F50 9F08 9F19 9F24 9F25 …
//	   63 Application Specific Transparent Template (kept opaque)
//	62 Common Data Template            at most one, for data common to the applications
//	   50 57 5A 5F20 5F2D …
//	   64 Common Data Transparent Template (kept opaque)
//
// Decisions where the specification leaves room (documented here because callers see them):
//   - The top level holds only 85, 61 and 62. Inside 61 and 62, tags this package does not
//     know (a wallet's 9F02, 5F2A, 95, …) are allowed and kept; tags it knows are checked
//     against their format and length, and 85, 61 and 62 are refused there. A tag appears at
//     most once per template.
//   - The transparent templates 63 and 64 are for the issuer and are kept as they are: their
//     Value holds the encoded data objects, unchecked, so they reach the acquirer byte for byte.
//   - PANs (in 5A and in track 2) are 12–19 digits; the track 2 expiry month is 01–12.
//   - The BER-TLV is strict (see DecodeTLV), so a decoded code re-encodes to the same bytes.

// Tags of the consumer-presented mode.
const (
	cpmTagFormat      Tag = 0x85
	cpmTagApplication Tag = 0x61
	cpmTagCommon      Tag = 0x62
	cpmTagAppOpaque   Tag = 0x63
	cpmTagCommonOpaq  Tag = 0x64
	cpmTagADF         Tag = 0x4F
	cpmTagLabel       Tag = 0x50
	cpmTagTrack2      Tag = 0x57
	cpmTagPAN         Tag = 0x5A
	cpmTagName        Tag = 0x5F20
	cpmTagExpiryDate  Tag = 0x5F24
)

// cpmFormatIndicator is the only Payload Format Indicator this decoder reads.
const cpmFormatIndicator = "CPV01"

// CPM is a decoded EMVCo consumer-presented code.
type CPM struct {
	// Objects is the BER-TLV tree in payload order: 85, then one or two 61 and at most one
	// 62. Transparent templates (63, 64) are opaque: their contents are in Value.
	Objects []TLV
}

// CPMApplication sums up one Application Template, with what the Common Data Template
// supplies for all applications filled in.
type CPMApplication struct {
	AID            string `json:"aid"`                       // 4F, uppercase hex
	Label          string `json:"label,omitempty"`           // 50
	PAN            string `json:"pan,omitempty"`             // from 5A or track 2, masked by MaskPAN
	Expiry         string `json:"expiry,omitempty"`          // YYMM, from track 2 or 5F24
	CardholderName string `json:"cardholder_name,omitempty"` // 5F20
}

// DecodeCPM decodes and validates a consumer-presented payload: standard base64 (padded or
// not, surrounding whitespace ignored) of BER-TLV that follows EMV QRCPS CPM.
//
// Errors are *ParseError. Bad base64 and bad BER-TLV wrap ErrMalformed; a broken rule of the
// specification wraps ErrRule. ID is the tag path ("61.5A") and Offset the byte offset of
// that data object in the decoded binary, except for base64 errors, where Offset counts
// characters of the payload.
func DecodeCPM(payload string) (*CPM, error) {
	b, err := cpmBase64(payload)
	if err != nil {
		return nil, err
	}
	if b[0] != byte(cpmTagFormat) {
		// Say so before BER-TLV errors about whatever this is (an MPM payload is base64 too).
		return nil, cpmNotCPM(b[0])
	}
	objs, err := decodeTLVWith(b, cpmOpaque)
	if err != nil {
		return nil, err
	}
	if err := cpmValidate(objs); err != nil {
		return nil, err
	}
	return &CPM{Objects: objs}, nil
}

func cpmNotCPM(first byte) error {
	return ruleErr("", 0, "a consumer-presented code begins with 85 (Payload Format Indicator); this one begins with byte %02X", first)
}

// cpmOpaque reports the tags DecodeCPM keeps opaque: the transparent templates.
func cpmOpaque(t Tag) bool { return t == cpmTagAppOpaque || t == cpmTagCommonOpaq }

// EncodeCPM validates c as DecodeCPM would and encodes it as standard padded base64.
// DecodeCPM(EncodeCPM(c)) gives c back. Transparent templates (63, 64) must be given
// opaque: nil Children and their encoded data objects in Value.
func EncodeCPM(c *CPM) (string, error) {
	if c == nil {
		return "", ruleErr("", -1, "no consumer-presented code to encode")
	}
	if err := cpmValidate(c.Objects); err != nil {
		return "", err
	}
	b, err := EncodeTLV(c.Objects)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// cpmBase64 decodes the payload, refusing anything but the standard alphabet.
func cpmBase64(payload string) ([]byte, error) {
	s := strings.TrimSpace(payload)
	lead := utf8.RuneCountInString(payload[:len(payload)-len(strings.TrimLeftFunc(payload, unicode.IsSpace))])
	if s == "" {
		return nil, malformed("", -1, "empty payload")
	}
	if limit := base64.StdEncoding.EncodedLen(MaxPayload); len(s) > limit {
		return nil, malformed("", -1, "payload of %d characters is longer than the %d that %d bytes take in base64",
			len(s), limit, MaxPayload)
	}
	pad := len(s) - len(strings.TrimRight(s, "="))
	for i := 0; i < len(s)-pad; i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '+', c == '/':
		case c == '-' || c == '_':
			return nil, malformed("", lead+i, "base64: %q is URL-safe base64; a CPM payload uses the standard alphabet", c)
		case c == '=':
			return nil, malformed("", lead+i, "base64: padding '=' inside the payload")
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return nil, malformed("", lead+i, "base64: whitespace inside the payload")
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return nil, malformed("", lead+i, "base64: %q is not a base64 character", r)
		}
	}
	enc := base64.RawStdEncoding.Strict()
	switch {
	case pad > 2:
		return nil, malformed("", lead+len(s)-pad, "base64: %d padding characters", pad)
	case pad > 0 && len(s)%4 != 0:
		return nil, malformed("", lead+len(s)-pad, "base64: padded payload of %d characters is not a multiple of 4", len(s))
	case pad > 0:
		enc = base64.StdEncoding.Strict()
	}
	b, err := enc.DecodeString(s)
	if err == nil && len(b) == 0 {
		err = errors.New("no data")
	}
	if err != nil {
		var ce base64.CorruptInputError
		if errors.As(err, &ce) {
			return nil, malformed("", lead+int(ce), "base64: truncated, or not canonical (unused bits set)")
		}
		return nil, malformed("", -1, "base64: %v", err)
	}
	return b, nil
}

// cpmKind is the format of a data object's value (EMV Book 3 4.3).
type cpmKind int

const (
	cpmBinary     cpmKind = iota // b
	cpmText                      // ans: printable ASCII
	cpmAlnum                     // an: letters and digits
	cpmNumeric                   // n: BCD digits
	cpmPAN                       // cn: 12–19 digits, padded with F
	cpmTrack2                    // PAN, D, YYMM, service code, discretionary data, F pad
	cpmLanguage                  // an: one to four ISO 639 two-letter codes
	cpmTextOrByte                // b, shown as text when it is printable ASCII (9F12)
)

// cpmField describes a data object the package knows, inside 61 and 62.
type cpmField struct {
	name     string
	kind     cpmKind
	min, max int // length of the value in bytes
}

var cpmFields = map[Tag]cpmField{
	0x4F:   {"ADF Name", cpmBinary, 5, 16},
	0x50:   {"Application Label", cpmText, 1, 16},
	0x57:   {"Track 2 Equivalent Data", cpmTrack2, 1, 19},
	0x5A:   {"Application PAN", cpmPAN, 1, 10},
	0x5F20: {"Cardholder Name", cpmText, 2, 26},
	0x5F24: {"Application Expiration Date", cpmNumeric, 3, 3},
	0x5F2D: {"Language Preference", cpmLanguage, 2, 8},
	0x5F34: {"PAN Sequence Number", cpmNumeric, 1, 1},
	0x5F50: {"Issuer URL", cpmText, 1, 255},
	0x82:   {"Application Interchange Profile", cpmBinary, 2, 2},
	0x9F08: {"Application Version Number", cpmBinary, 2, 2},
	0x9F10: {"Issuer Application Data", cpmBinary, 1, 32},
	0x9F12: {"Application Preferred Name", cpmTextOrByte, 1, 16},
	0x9F19: {"Token Requestor ID", cpmNumeric, 6, 6},
	0x9F24: {"Payment Account Reference", cpmAlnum, 29, 29},
	0x9F25: {"Last 4 Digits of PAN", cpmNumeric, 2, 2},
	0x9F26: {"Application Cryptogram", cpmBinary, 8, 8},
	0x9F27: {"Cryptogram Information Data", cpmBinary, 1, 1},
	0x9F36: {"Application Transaction Counter", cpmBinary, 2, 2},
	0x9F37: {"Unpredictable Number", cpmBinary, 4, 4},
}

// cpmTextValue returns the value as text when tag's format is text and the value is
// printable ASCII (which DecodeCPM guarantees for those tags).
func cpmTextValue(tag Tag, v []byte) (string, bool) {
	if tag != cpmTagFormat {
		switch cpmFields[tag].kind {
		case cpmText, cpmAlnum, cpmLanguage, cpmTextOrByte:
		default:
			return "", false
		}
	}
	for _, c := range v {
		if c < 0x20 || c > 0x7E {
			return "", false
		}
	}
	return string(v), true
}

// cpmValidate applies the specification's rules to a decoded tree. Offsets are computed
// from the (canonical) encoding, so they are those of the decoded binary.
func cpmValidate(objs []TLV) error {
	if err := tlvBounds(objs); err != nil {
		return err
	}
	if len(objs) == 0 {
		return ruleErr(cpmTagFormat.String(), -1, "missing: a payload begins with 85 (Payload Format Indicator)")
	}
	if first := append(objs[0].Tag.Bytes(), 0)[0]; first != byte(cpmTagFormat) {
		return cpmNotCPM(first)
	}
	if err := cpmShape(objs[0], nil, 0); err != nil {
		return err
	}
	if v := string(objs[0].Value); v != cpmFormatIndicator {
		if strings.HasPrefix(v, "CPV") {
			return ruleErr("85", 0, "version %q is not supported; this decoder reads %q", v, cpmFormatIndicator)
		}
		return ruleErr("85", 0, "Payload Format Indicator must be %q, got %q", cpmFormatIndicator, v)
	}
	apps, commons := 0, 0
	for i, off := 1, tlvSize(objs[0]); i < len(objs); i++ {
		o := objs[i]
		id := o.Tag.String()
		if err := cpmShape(o, nil, off); err != nil {
			return err
		}
		switch o.Tag {
		case cpmTagFormat:
			return ruleErr(id, off, "Payload Format Indicator appears twice")
		case cpmTagApplication:
			if apps++; apps > 2 {
				return ruleErr(id, off, "at most two Application Templates (61) are allowed")
			}
		case cpmTagCommon:
			if commons++; commons > 1 {
				return ruleErr(id, off, "at most one Common Data Template (62) is allowed")
			}
		default:
			return ruleErr(id, off, "tag %s is not allowed at the top level (only 85, 61 and 62)", o.Tag)
		}
		if err := cpmTemplate(o, off); err != nil {
			return err
		}
		off += tlvSize(o)
	}
	if apps == 0 {
		return ruleErr(cpmTagApplication.String(), -1, "missing: at least one Application Template (61) is required")
	}
	return cpmNoOverlap(objs)
}

// cpmNoOverlap applies the rule that a data object is either in an Application Template
// (61) or in the Common Data Template (62), never in both (EMV QRCPS CPM, Common Data
// Template: it holds the data common to the applications, in place of repeating it): a
// terminal given two values would have to choose one. The error is at the second
// occurrence in payload order.
func cpmNoOverlap(objs []TLV) error {
	common, ok := tlvFind(objs, cpmTagCommon)
	if !ok {
		return nil
	}
	inCommon := map[Tag]bool{}
	for _, o := range common.Children {
		inCommon[o.Tag] = true
	}
	// Offsets of every child of every template, in payload order.
	type at struct {
		tmpl, tag Tag
		off       int
	}
	var seen []at
	for i, off := 0, 0; i < len(objs); i++ {
		o := objs[i]
		if o.Tag == cpmTagApplication || o.Tag == cpmTagCommon {
			child := off + tlvSize(o) - tlvContentSize(o)
			for _, c := range o.Children {
				seen = append(seen, at{o.Tag, c.Tag, child})
				child += tlvSize(c)
			}
		}
		off += tlvSize(o)
	}
	first := map[Tag]at{}
	for _, s := range seen {
		if !inCommon[s.tag] {
			continue
		}
		f, dup := first[s.tag]
		if !dup {
			first[s.tag] = s
			continue
		}
		if f.tmpl == s.tmpl { // two Application Templates may both hold it; 62 has each tag once
			continue
		}
		return ruleErr(tlvPath([]Tag{s.tmpl, s.tag}), s.off,
			"tag %s is in both an Application Template (61) and the Common Data Template (62) (first at offset %d): a data object belongs in one of them", s.tag, f.off)
	}
	return nil
}

// cpmShape checks that o is represented the way DecodeCPM would produce it, so that the
// tree re-encodes to bytes that decode to the same tree: constructed objects have Children,
// except the transparent templates, which are opaque. The tree is within tlvBounds.
func cpmShape(o TLV, path []Tag, off int) error {
	here := append(path[:len(path):len(path)], o.Tag)
	opaque := cpmOpaque(o.Tag)
	switch {
	case !o.Tag.valid():
		return malformed(tlvPath(path), off, "%s is not a well-formed tag", o.Tag)
	case opaque && o.Children != nil:
		return malformed(tlvPath(here), off, "a transparent template is kept opaque: give its encoded data objects as Value")
	case o.Tag.Constructed() && !opaque && o.Children == nil:
		return malformed(tlvPath(here), off, "a constructed data object must be given as Children")
	case !o.Tag.Constructed() && o.Children != nil:
		return malformed(tlvPath(here), off, "a primitive tag cannot hold data objects")
	}
	if o.Children != nil && len(o.Value) > 0 {
		return malformed(tlvPath(here), off, "a template has either a value or data objects, not both")
	}
	child := off + tlvSize(o) - tlvContentSize(o)
	for _, c := range o.Children {
		if err := cpmShape(c, here, child); err != nil {
			return err
		}
		child += tlvSize(c)
	}
	return nil
}

// tlvContentSize is the size of o's encoded contents (without tag and length).
func tlvContentSize(o TLV) int {
	if o.Children == nil {
		return len(o.Value)
	}
	n := 0
	for _, c := range o.Children {
		n += tlvSize(c)
	}
	return n
}

// cpmTemplate checks an Application Template (61) or the Common Data Template (62) that
// starts at offset off.
func cpmTemplate(t TLV, off int) error {
	name := "Application Template"
	if t.Tag == cpmTagCommon {
		name = "Common Data Template"
	}
	seen := map[Tag]int{}
	child := off + tlvSize(t) - tlvContentSize(t)
	for _, o := range t.Children {
		id := tlvPath([]Tag{t.Tag, o.Tag})
		if first, dup := seen[o.Tag]; dup {
			return ruleErr(id, child, "tag %s appears twice in the %s (first at offset %d)", o.Tag, name, first)
		}
		seen[o.Tag] = child
		switch o.Tag {
		case cpmTagFormat, cpmTagApplication, cpmTagCommon:
			return ruleErr(id, child, "tag %s is not allowed inside a template", o.Tag)
		case cpmTagAppOpaque:
			if t.Tag != cpmTagApplication {
				return ruleErr(id, child, "63 (Application Specific Transparent Template) belongs in an Application Template")
			}
		case cpmTagCommonOpaq:
			if t.Tag != cpmTagCommon {
				return ruleErr(id, child, "64 (Common Data Transparent Template) belongs in the Common Data Template")
			}
		}
		if f, ok := cpmFields[o.Tag]; ok {
			if msg := f.check(o.Value); msg != "" {
				return ruleErr(id, child, "%s", msg)
			}
		}
		child += tlvSize(o)
	}
	if _, ok := seen[cpmTagADF]; !ok && t.Tag == cpmTagApplication {
		return ruleErr(t.Tag.String(), off, "an Application Template must contain 4F (ADF Name)")
	}
	return nil
}

// check returns what is wrong with v, or "".
func (f cpmField) check(v []byte) string {
	if len(v) < f.min || len(v) > f.max {
		if f.min == f.max {
			return fmt.Sprintf("%s must be %d bytes, got %d", f.name, f.min, len(v))
		}
		return fmt.Sprintf("%s must be %d–%d bytes, got %d", f.name, f.min, f.max, len(v))
	}
	switch f.kind {
	case cpmText:
		for _, c := range v {
			if c < 0x20 || c > 0x7E {
				return fmt.Sprintf("%s must be printable ASCII, has byte %02X", f.name, c)
			}
		}
	case cpmAlnum:
		for _, c := range v {
			if !cpmIsAlnum(c) {
				return fmt.Sprintf("%s must be letters and digits, has byte %02X", f.name, c)
			}
		}
	case cpmLanguage:
		for _, c := range v {
			if !cpmIsAlnum(c) || (c >= '0' && c <= '9') {
				return fmt.Sprintf("%s must be letters (ISO 639 codes), has byte %02X", f.name, c)
			}
		}
		if len(v)%2 != 0 {
			return fmt.Sprintf("%s must be one to four two-letter ISO 639 codes, got %d letters", f.name, len(v))
		}
	case cpmNumeric:
		if n := hex.EncodeToString(v); strings.Trim(n, "0123456789") != "" {
			return fmt.Sprintf("%s must be BCD digits, got %X", f.name, v)
		}
	case cpmPAN:
		digits := strings.TrimRight(strings.ToUpper(hex.EncodeToString(v)), "F")
		if strings.Trim(digits, "0123456789") != "" {
			return fmt.Sprintf("PAN must be digits padded with F, got %X", v)
		}
		if len(digits) < 12 || len(digits) > 19 {
			return fmt.Sprintf("PAN must be 12–19 digits, got %d", len(digits))
		}
	case cpmTrack2:
		if _, _, err := cpmParseTrack2(v); err != "" {
			return err
		}
	}
	return ""
}

func cpmIsAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// cpmParseTrack2 splits Track 2 Equivalent Data (EMV Book 3 Annex A: PAN, field separator
// D, expiry YYMM, service code, discretionary data, one F to fill the last byte) into the
// PAN and the expiry, or says what is wrong with it.
func cpmParseTrack2(v []byte) (pan, expiry, problem string) {
	s := strings.TrimSuffix(strings.ToUpper(hex.EncodeToString(v)), "F")
	pan, rest, ok := strings.Cut(s, "D")
	if !ok {
		return "", "", "Track 2 Equivalent Data has no field separator D"
	}
	if strings.Trim(pan, "0123456789") != "" || strings.Trim(rest, "0123456789") != "" {
		return "", "", fmt.Sprintf("Track 2 Equivalent Data must be digits around one separator D, with at most one F at the end, got %X", v)
	}
	if len(pan) < 12 || len(pan) > 19 {
		return "", "", fmt.Sprintf("Track 2 PAN must be 12–19 digits, got %d", len(pan))
	}
	if len(rest) < 7 {
		return "", "", "Track 2 Equivalent Data must have the expiry (YYMM) and service code after D"
	}
	if mm := rest[2:4]; mm < "01" || mm > "12" {
		return "", "", fmt.Sprintf("Track 2 expiry month %s is not 01–12", mm)
	}
	return pan, rest[:4], ""
}

// cpmAccount returns the PAN (from 5A, else track 2) and the expiry YYMM (from track 2,
// else 5F24) found directly in template t.
func cpmAccount(t TLV) (pan, expiry string) {
	if o, ok := t.Get(cpmTagTrack2); ok {
		pan, expiry, _ = cpmParseTrack2(o.Value)
	}
	if o, ok := t.Get(cpmTagPAN); ok {
		pan = strings.TrimRight(fmt.Sprintf("%X", o.Value), "F")
	}
	if o, ok := t.Get(cpmTagExpiryDate); ok && expiry == "" && len(o.Value) == 3 {
		expiry = fmt.Sprintf("%X", o.Value[:2])
	}
	return pan, expiry
}

// MaskPAN hides the middle of a PAN for display and logs: the first six and last four
// digits stay when at least three are hidden ("621234******0123"); shorter PANs keep only
// the last four, and four characters or fewer are hidden entirely.
func MaskPAN(pan string) string {
	n := len(pan)
	switch {
	case n >= 13:
		return pan[:6] + strings.Repeat("*", n-10) + pan[n-4:]
	case n > 4:
		return strings.Repeat("*", n-4) + pan[n-4:]
	}
	return strings.Repeat("*", n)
}

// Get returns the first top-level data object with the given tag, and then, for each further
// tag in path, the first data object with that tag inside it: Get(0x61, 0x4F).
func (c *CPM) Get(path ...Tag) (TLV, bool) {
	objs := c.Objects
	var o TLV
	for _, t := range path {
		var ok bool
		if o, ok = tlvFind(objs, t); !ok {
			return TLV{}, false
		}
		objs = o.Children
	}
	return o, len(path) > 0
}

// Applications sums up each Application Template in payload order. Data absent from an
// Application Template is taken from the Common Data Template. The PAN is masked.
func (c *CPM) Applications() []CPMApplication {
	common, _ := tlvFind(c.Objects, cpmTagCommon)
	apps := []CPMApplication{}
	for _, t := range c.Objects {
		if t.Tag != cpmTagApplication {
			continue
		}
		// Data in the Application Template wins over the Common Data Template.
		lookup := func(tag Tag) ([]byte, bool) {
			if o, ok := t.Get(tag); ok {
				return o.Value, true
			}
			if o, ok := common.Get(tag); ok {
				return o.Value, true
			}
			return nil, false
		}
		var a CPMApplication
		if v, ok := t.Get(cpmTagADF); ok {
			a.AID = fmt.Sprintf("%X", v.Value)
		}
		if v, ok := lookup(cpmTagLabel); ok {
			a.Label = string(v)
		}
		if v, ok := lookup(cpmTagName); ok {
			a.CardholderName = string(v)
		}
		pan, expiry := "", ""
		for _, src := range []TLV{t, common} {
			p, e := cpmAccount(src)
			if pan == "" {
				pan = p
			}
			if expiry == "" {
				expiry = e
			}
		}
		if pan != "" {
			a.PAN = MaskPAN(pan)
		}
		a.Expiry = expiry
		apps = append(apps, a)
	}
	return apps
}

// MarshalJSON writes {"format": "emv-cpm", "objects": […], "applications": […]}: the tree
// (see TLV.MarshalJSON) and the summary of Applications.
func (c *CPM) MarshalJSON() ([]byte, error) {
	objs := c.Objects
	if objs == nil {
		objs = []TLV{}
	}
	return json.Marshal(struct {
		Format       string           `json:"format"`
		Objects      []TLV            `json:"objects"`
		Applications []CPMApplication `json:"applications"`
	}{"emv-cpm", objs, c.Applications()})
}

// MarshalJSON writes {"tag": "61", "objects": […]} for a decoded constructed object and
// {"tag": "85", "value": "4350563031", "text": "CPV01"} otherwise: value is uppercase hex,
// and text is there for tags whose format is text (85, 50, 5F20, 5F2D, 5F50, 9F12, 9F24)
// when the value is printable ASCII.
func (t TLV) MarshalJSON() ([]byte, error) {
	if t.Children != nil {
		return json.Marshal(struct {
			Tag     string `json:"tag"`
			Objects []TLV  `json:"objects"`
		}{t.Tag.String(), t.Children})
	}
	text, _ := cpmTextValue(t.Tag, t.Value)
	return json.Marshal(struct {
		Tag   string `json:"tag"`
		Value string `json:"value"`
		Text  string `json:"text,omitempty"`
	}{t.Tag.String(), fmt.Sprintf("%X", t.Value), text})
}

// Masked returns c for printing with the cardholder's account data masked: the value of
// 5A (PAN) and 57 (Track 2 Equivalent Data) anywhere in the tree is left out and replaced
// by "masked": the PAN masked by MaskPAN, followed for track 2 by the expiry ("D3012…").
// Its JSON is MarshalJSON's otherwise. c is not changed.
func (c *CPM) Masked() json.Marshaler { return maskedCPM{c} }

type maskedCPM struct{ c *CPM }

func (m maskedCPM) MarshalJSON() ([]byte, error) {
	objs := make([]maskedTLV, len(m.c.Objects))
	for i, o := range m.c.Objects {
		objs[i] = maskedTLV(o)
	}
	return json.Marshal(struct {
		Format       string           `json:"format"`
		Objects      []maskedTLV      `json:"objects"`
		Applications []CPMApplication `json:"applications"`
	}{"emv-cpm", objs, m.c.Applications()})
}

// maskedTLV is a TLV whose JSON masks 5A and 57.
type maskedTLV TLV

func (t maskedTLV) MarshalJSON() ([]byte, error) {
	switch {
	case t.Children != nil:
		kids := make([]maskedTLV, len(t.Children))
		for i, c := range t.Children {
			kids[i] = maskedTLV(c)
		}
		return json.Marshal(struct {
			Tag     string      `json:"tag"`
			Objects []maskedTLV `json:"objects"`
		}{t.Tag.String(), kids})
	case t.Tag == cpmTagPAN || t.Tag == cpmTagTrack2:
		return json.Marshal(struct {
			Tag    string `json:"tag"`
			Masked string `json:"masked"`
		}{t.Tag.String(), maskAccount(t.Tag, t.Value)})
	}
	return TLV(t).MarshalJSON()
}

// maskAccount shows a PAN or track 2 value without the digits MaskPAN hides; a value that
// does not parse shows as stars only.
func maskAccount(tag Tag, v []byte) string {
	if tag == cpmTagPAN {
		digits := strings.TrimRight(strings.ToUpper(hex.EncodeToString(v)), "F")
		if strings.Trim(digits, "0123456789") == "" && digits != "" {
			return MaskPAN(digits)
		}
		return strings.Repeat("*", 2*len(v))
	}
	pan, expiry, problem := cpmParseTrack2(v)
	if problem != "" {
		return strings.Repeat("*", 2*len(v))
	}
	return MaskPAN(pan) + "D" + expiry + "…"
}
