package qr

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxPayload bounds the size, in bytes, of a payload any parser in this package reads. The
// largest QR code holds 2,953 bytes; anything longer did not come from a QR code.
const MaxPayload = 4096

// maxMPMChars is the EMV MPM limit on the whole payload, in characters.
const maxMPMChars = 512

// Object is one EMV MPM data object: a two-digit ID and either a Value (a primitive) or
// Objects (a template: 26–51, 62, 64 and 80–99 at the top level). Offset is where the
// object's ID starts in the payload, in characters; it is -1 for objects not yet encoded.
type Object struct {
	ID      string
	Value   string
	Objects []Object
	Offset  int
}

// IsTemplate reports whether the object holds nested objects rather than a value.
func (o Object) IsTemplate() bool { return o.Objects != nil }

// Get returns the nested object with the given ID, if o is a template holding one.
func (o Object) Get(id string) (Object, bool) { return find(o.Objects, id) }

// MarshalJSON writes {"id", "value"} for a primitive and {"id", "objects"} for a template.
func (o Object) MarshalJSON() ([]byte, error) {
	if o.IsTemplate() {
		return json.Marshal(struct {
			ID      string   `json:"id"`
			Objects []Object `json:"objects"`
		}{o.ID, o.Objects})
	}
	return json.Marshal(struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	}{o.ID, o.Value})
}

func find(objs []Object, id string) (Object, bool) {
	for _, o := range objs {
		if o.ID == id {
			return o, true
		}
	}
	return Object{}, false
}

// Warning is a field-rule violation that lenient parsing let through: the data object (or
// path such as "62.05"), its offset in characters, and the rule.
type Warning struct {
	ID      string `json:"id,omitempty"`
	Offset  int    `json:"offset"`
	Message string `json:"message"`
}

// MarshalJSON leaves out the offset when it is unknown (a missing data object).
func (w Warning) MarshalJSON() ([]byte, error) {
	type plain struct {
		ID      string `json:"id,omitempty"`
		Offset  *int   `json:"offset,omitempty"`
		Message string `json:"message"`
	}
	p := plain{ID: w.ID, Message: w.Message}
	if w.Offset >= 0 {
		p.Offset = &w.Offset
	}
	return json.Marshal(p)
}

func (w Warning) String() string {
	return (&ParseError{ID: w.ID, Offset: w.Offset, Msg: w.Message}).Error()
}

// Mode selects how strictly ParseMPM applies the specification.
type Mode int

const (
	// Strict applies every rule of EMV QRCPS MPM v1.1; it is what BuildMPM produces.
	Strict Mode = iota
	// Lenient is for codes read in the field: the structure must hold (well-formed data
	// objects and templates, "00" first, "63" last with a correct CRC, no duplicate IDs),
	// and field-rule violations are returned as warnings instead of errors. A lowercase
	// CRC is accepted.
	Lenient
)

// MPM is a parsed EMV merchant-presented payload.
type MPM struct {
	// Objects in payload order; the last is the CRC (63).
	Objects []Object
	// CRC as written in the payload (tag 63's value).
	CRC string
	// Warnings lists the field rules the payload breaks; always empty in Strict mode.
	Warnings []Warning
}

// Get returns the top-level object with the given ID.
func (m *MPM) Get(id string) (Object, bool) { return find(m.Objects, id) }

// value returns the value of a primitive at the path ("59", or "62", "01").
func (m *MPM) value(path ...string) string {
	objs := m.Objects
	var o Object
	for _, id := range path {
		var ok bool
		if o, ok = find(objs, id); !ok {
			return ""
		}
		objs = o.Objects
	}
	return o.Value
}

// MarshalJSON writes the shape `posagent qr parse` prints: format, crc, objects (in payload
// order), merchant (the summary) and, in lenient mode, warnings.
func (m *MPM) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Format   string    `json:"format"`
		CRC      string    `json:"crc"`
		Objects  []Object  `json:"objects"`
		Merchant Merchant  `json:"merchant"`
		Warnings []Warning `json:"warnings,omitempty"`
	}{"emv-mpm", m.CRC, m.Objects, m.Merchant(), m.Warnings})
}

// isTemplateID reports whether a top-level ID holds a template: merchant account
// information 26–51, additional data 62, language template 64 and unreserved 80–99.
func isTemplateID(id string) bool {
	n := idNum(id)
	return (n >= 26 && n <= 51) || n == 62 || n == 64 || (n >= 80 && n <= 99)
}

// idNum returns the number of a two-digit ID, or -1.
func idNum(id string) int {
	if len(id) != 2 || !isDigit(id[0]) || !isDigit(id[1]) {
		return -1
	}
	return int(id[0]-'0')*10 + int(id[1]-'0')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// ParseMPM parses an EMV merchant-presented payload. Lengths count characters (Unicode code
// points); the CRC is checked over the UTF-8 bytes up to and including "6304". The error is
// a *ParseError naming the data object, its offset and the rule; it wraps ErrMalformed,
// ErrCRC or ErrRule. In Lenient mode only ErrMalformed and ErrCRC are returned and rule
// violations land in MPM.Warnings.
func ParseMPM(payload string, mode Mode) (*MPM, error) {
	if len(payload) > MaxPayload {
		return nil, malformed("", -1, "payload is %d bytes, more than any QR code holds (%d)", len(payload), MaxPayload)
	}
	if !utf8.ValidString(payload) {
		return nil, malformed("", byteToCharOffset(payload, firstInvalidUTF8(payload)), "payload is not valid UTF-8")
	}
	objs, err := tokenize(payload, 0, "", true)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, malformed("", 0, "payload is empty")
	}
	if objs[0].ID != "00" {
		return nil, malformed(objs[0].ID, 0, "payload must start with the payload format indicator (tag 00, \"000201\")")
	}
	last := objs[len(objs)-1]
	if last.ID != "63" || utf8.RuneCountInString(last.Value) != 4 {
		return nil, malformed(last.ID, last.Offset, "payload must end with the CRC data object: \"6304\" and four hex digits")
	}
	m := &MPM{Objects: objs, CRC: last.Value}

	// The CRC covers everything up to and including "6304": all but the last 4 characters.
	covered := payload[:len(payload)-len(last.Value)]
	want := crcHex(CRC16([]byte(covered)))
	if !isHex(last.Value) {
		return nil, &ParseError{ID: "63", Offset: last.Offset, Err: ErrCRC,
			Msg: fmt.Sprintf("CRC %q must be four hex digits (computed %s)", last.Value, want)}
	}
	if strings.ToUpper(last.Value) != want {
		return nil, &ParseError{ID: "63", Offset: last.Offset, Err: ErrCRC,
			Msg: fmt.Sprintf("CRC is %s but the payload's checksum is %s: the code was altered or misread", last.Value, want)}
	}

	var rules []*ParseError
	if n := utf8.RuneCountInString(payload); n > maxMPMChars {
		rules = append(rules, ruleErr("", -1, "payload is %d characters, more than the %d EMV allows", n, maxMPMChars))
	}
	if last.Value != want {
		rules = append(rules, ruleErr("63", last.Offset, "CRC %q must be uppercase hex (%s)", last.Value, want))
	}
	rules = append(rules, checkRules(objs)...)
	if mode == Strict {
		if len(rules) > 0 {
			return nil, rules[0]
		}
		return m, nil
	}
	for _, r := range rules {
		m.Warnings = append(m.Warnings, Warning{ID: r.ID, Offset: r.Offset, Message: r.Msg})
	}
	return m, nil
}

// tokenize splits s into data objects. base is the character offset of s in the payload,
// parent the enclosing template's ID ("" at the top level). At the top level, template IDs
// are parsed into nested objects; nesting stops there. Duplicate IDs at one level are
// refused. Values are substrings of s: tokenizing allocates only the object slices.
func tokenize(s string, base int, parent string, top bool) ([]Object, error) {
	objs := make([]Object, 0, 16)
	var seen [100]bool
	chars := 0 // characters consumed, for offsets
	for i := 0; i < len(s); {
		off := base + chars
		if len(s)-i < 4 || !isASCII4(s[i:]) {
			rest := s[i:]
			if utf8.RuneCountInString(rest) < 4 {
				return nil, malformed(parent, off, "truncated data object: %q is too short for a 2-digit ID and a 2-digit length", rest)
			}
		}
		id, lenStr := s[i:i+2], s[i+2:i+4]
		if idNum(id) < 0 {
			return nil, malformed(parent, off, "data object ID %q must be two digits", firstChars(s[i:], 2))
		}
		path := joinPath(parent, id)
		n := idNum(lenStr)
		if n < 0 {
			return nil, malformed(path, off, "length %q must be two digits", firstChars(s[i+2:], 2))
		}
		start := i + 4
		end, ok := advanceChars(s, start, n)
		if !ok {
			return nil, malformed(path, off, "length %02d runs past the end of the payload (%d characters left)", n, utf8.RuneCountInString(s[start:]))
		}
		num := idNum(id)
		if seen[num] {
			return nil, malformed(path, off, "duplicate data object: ID %s appears twice", id)
		}
		seen[num] = true
		o := Object{ID: id, Value: s[start:end], Offset: off}
		if top && isTemplateID(id) {
			children, err := tokenize(s[start:end], off+4, id, false)
			switch {
			case err == nil:
				o.Objects, o.Value = children, ""
			case num < 80:
				return nil, err
			}
			// The format of unreserved templates (80–99) is defined by the parties that use
			// them, and field codes put free text there (Kenya's KE-QR timestamps, QPay's
			// "01"). Such an object stays a primitive; checkRules reports it as a rule
			// violation, so Strict refuses it and Lenient warns.
		}
		objs = append(objs, o)
		chars += 4 + n
		i = end
	}
	return objs, nil
}

// isASCII4 reports whether the first four bytes of s are ASCII.
func isASCII4(s string) bool {
	return len(s) >= 4 && s[0]|s[1]|s[2]|s[3] < utf8.RuneSelf
}

// advanceChars returns the byte index n characters after start in s.
func advanceChars(s string, start, n int) (int, bool) {
	j := start
	for range n {
		if j >= len(s) {
			return 0, false
		}
		if s[j] < utf8.RuneSelf {
			j++
			continue
		}
		_, size := utf8.DecodeRuneInString(s[j:])
		j += size
	}
	return j, true
}

// firstChars returns up to n characters of s, for messages.
func firstChars(s string, n int) string {
	end, ok := advanceChars(s, 0, n)
	if !ok {
		return s
	}
	return s[:end]
}

func joinPath(parent, id string) string {
	if parent == "" {
		return id
	}
	return parent + "." + id
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

func firstInvalidUTF8(s string) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(s)
}

func byteToCharOffset(s string, b int) int { return utf8.RuneCountInString(s[:b]) }
