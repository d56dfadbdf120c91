package possim

import (
	"errors"
	"fmt"
	"strings"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"
)

// This file is GS k as a printer reads it (Epson ESC/POS reference, "GS k: print
// barcode"): the symbology from m, the data checked as the printer checks it, and the
// bars, drawn with gozxing's writers.

// barcode is one GS k symbol.
type barcode struct {
	sym     string // UPC-A, UPC-E, EAN13, EAN8, CODE39, ITF, CODABAR, CODE93, CODE128
	data    string // what the symbol holds, check digit included (the HRI text)
	content string // data for the writer
	format  gozxing.BarcodeFormat
	height  int  // GS h, dots
	module  int  // GS w, dots per narrow module
	hri     byte // GS H
}

// errBarcodeData means GS k data its symbology does not allow; the printer prints nothing.
var errBarcodeData = errors.New("data not allowed for the symbology")

// barcodeSyms maps m of function A (0–6) and B (65–73) to the symbology.
var barcodeSyms = map[byte]string{
	0: "UPC-A", 1: "UPC-E", 2: "EAN13", 3: "EAN8", 4: "CODE39", 5: "ITF", 6: "CODABAR",
	65: "UPC-A", 66: "UPC-E", 67: "EAN13", 68: "EAN8", 69: "CODE39", 70: "ITF", 71: "CODABAR",
	72: "CODE93", 73: "CODE128",
}

// newBarcode checks GS k data for symbology m and returns the symbol it prints.
func newBarcode(m byte, raw []byte) (*barcode, error) {
	sym, ok := barcodeSyms[m]
	if !ok {
		return nil, fmt.Errorf("unknown symbology")
	}
	bad := func(why string) error { return fmt.Errorf("%s %q: %w (%s)", sym, raw, errBarcodeData, why) }
	if len(raw) == 0 {
		return nil, bad("empty")
	}
	s := string(raw)
	bc := &barcode{sym: sym}
	switch sym {
	case "UPC-A", "EAN13", "EAN8":
		want := map[string]int{"UPC-A": 11, "EAN13": 12, "EAN8": 7}[sym]
		if !digits(s) || (len(s) != want && len(s) != want+1) {
			return nil, bad(fmt.Sprintf("%d or %d digits", want, want+1))
		}
		full := s[:want] + string(rune('0'+upceanCheck(s[:want])))
		if len(s) == want+1 && s != full {
			return nil, bad("wrong check digit")
		}
		bc.data, bc.content = full, full
		bc.format = map[string]gozxing.BarcodeFormat{"UPC-A": gozxing.BarcodeFormat_UPC_A, "EAN13": gozxing.BarcodeFormat_EAN_13, "EAN8": gozxing.BarcodeFormat_EAN_8}[sym]
	case "UPC-E":
		// 6 digits (number system 0 implied), or 7/8 with the number system (0 or 1)
		// first and the check digit last; 11/12-digit UPC-A forms are compressed.
		if !digits(s) {
			return nil, bad("digits only")
		}
		var e string
		switch len(s) {
		case 6:
			e = "0" + s
		case 7, 8:
			e = s[:7]
		case 11, 12:
			c, ok := compressUPCE(s[:11])
			if !ok {
				return nil, bad("this UPC-A number has no UPC-E form")
			}
			e = c
		default:
			return nil, bad("6, 7, 8, 11 or 12 digits")
		}
		if e[0] != '0' && e[0] != '1' {
			return nil, bad("number system 0 or 1")
		}
		full := e + string(rune('0'+upceanCheck(expandUPCE(e))))
		if len(s) == 8 && s != full {
			return nil, bad("wrong check digit")
		}
		bc.data, bc.content, bc.format = full, full, gozxing.BarcodeFormat_UPC_E
	case "CODE39":
		s = strings.TrimSuffix(strings.TrimPrefix(s, "*"), "*")
		if s == "" || strings.Trim(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%+-./") != "" {
			return nil, bad("0-9 A-Z space $ % + - . /")
		}
		bc.data, bc.content, bc.format = s, s, gozxing.BarcodeFormat_CODE_39
	case "ITF":
		if !digits(s) || len(s)%2 != 0 {
			return nil, bad("an even number of digits")
		}
		bc.data, bc.content, bc.format = s, s, gozxing.BarcodeFormat_ITF
	case "CODABAR":
		u := strings.ToUpper(s)
		if len(u) < 2 || !strings.ContainsRune("ABCD", rune(u[0])) || !strings.ContainsRune("ABCD", rune(u[len(u)-1])) ||
			strings.Trim(u[1:len(u)-1], "0123456789-$:/.+") != "" {
			return nil, bad("start and stop A-D around 0-9 - $ : / . +")
		}
		bc.data, bc.content, bc.format = s, u, gozxing.BarcodeFormat_CODABAR
	case "CODE93":
		for _, b := range raw {
			if b > 0x7F {
				return nil, bad("ASCII only")
			}
		}
		bc.data, bc.content, bc.format = s, s, gozxing.BarcodeFormat_CODE_93
	case "CODE128":
		data, content, err := decodeCode128(raw)
		if err != nil {
			return nil, bad(err.Error())
		}
		bc.data, bc.content, bc.format = data, content, gozxing.BarcodeFormat_CODE_128
	}
	if _, err := bc.bars(); err != nil {
		return nil, bad(err.Error())
	}
	return bc, nil
}

// decodeCode128 reads GS k CODE128 data: it starts with a code set ({A, {B or {C) and may
// change set ({A {B {C) or hold FNC1–4 ({1–{4), a shift ({S) and "{{" for a "{". In set C
// each byte is a pair of digits (0–99). It returns the data (the HRI text: FNC and
// shifts are not printed) and the writer's content (FNC1 as gozxing's escape).
func decodeCode128(raw []byte) (data, content string, err error) {
	if len(raw) < 2 || raw[0] != '{' || !strings.ContainsRune("ABC", rune(raw[1])) {
		return "", "", errors.New("must start with {A, {B or {C")
	}
	var d, c strings.Builder
	set := byte(0)
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		if b == '{' {
			if i+1 >= len(raw) {
				return "", "", errors.New("ends with {")
			}
			i++
			switch raw[i] {
			case 'A', 'B', 'C':
				set = raw[i]
			case '1':
				c.WriteRune('\u00f1') // gozxing's Code128 writer escape for FNC1
			case '2', '3', '4', 'S':
			case '{':
				d.WriteByte('{')
				c.WriteByte('{')
			default:
				return "", "", fmt.Errorf("unknown {%c", raw[i])
			}
			continue
		}
		switch set {
		case 'A':
			if b > 0x5F {
				return "", "", fmt.Errorf("byte 0x%02X not in code set A", b)
			}
		case 'B':
			if b < 0x20 || b > 0x7F {
				return "", "", fmt.Errorf("byte 0x%02X not in code set B", b)
			}
		case 'C':
			if b > 99 {
				return "", "", fmt.Errorf("byte %d not a digit pair of code set C", b)
			}
			fmt.Fprintf(&d, "%02d", b)
			fmt.Fprintf(&c, "%02d", b)
			continue
		}
		d.WriteByte(b)
		c.WriteByte(b)
	}
	if c.Len() == 0 {
		return "", "", errors.New("no data")
	}
	return d.String(), c.String(), nil
}

// bars returns the symbol's modules, true for a bar, without quiet zones.
func (bc *barcode) bars() ([]bool, error) {
	var w gozxing.Writer
	switch bc.format {
	case gozxing.BarcodeFormat_UPC_A:
		w = oned.NewUPCAWriter()
	case gozxing.BarcodeFormat_UPC_E:
		w = oned.NewUPCEWriter()
	case gozxing.BarcodeFormat_EAN_13:
		w = oned.NewEAN13Writer()
	case gozxing.BarcodeFormat_EAN_8:
		w = oned.NewEAN8Writer()
	case gozxing.BarcodeFormat_CODE_39:
		w = oned.NewCode39Writer()
	case gozxing.BarcodeFormat_ITF:
		w = oned.NewITFWriter()
	case gozxing.BarcodeFormat_CODABAR:
		w = oned.NewCodaBarWriter()
	case gozxing.BarcodeFormat_CODE_93:
		w = oned.NewCode93Writer()
	default:
		w = oned.NewCode128Writer()
	}
	m, err := w.Encode(bc.content, bc.format, 0, 1, map[gozxing.EncodeHintType]interface{}{gozxing.EncodeHintType_MARGIN: 0})
	if err != nil {
		return nil, err
	}
	out := make([]bool, m.GetWidth())
	for x := range out {
		out[x] = m.Get(x, 0)
	}
	return out, nil
}

func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// upceanCheck is the UPC/EAN check digit of s (the digits before it).
func upceanCheck(s string) int {
	sum := 0
	for i := range len(s) {
		d := int(s[len(s)-1-i] - '0')
		if i%2 == 0 {
			d *= 3
		}
		sum += d
	}
	return (10 - sum%10) % 10
}

// expandUPCE returns the 11 UPC-A digits (no check digit) of a 7-digit UPC-E number
// (number system and six digits).
func expandUPCE(e string) string {
	ns, d := e[:1], e[1:7]
	switch last := d[5]; {
	case last <= '2':
		return ns + d[0:2] + string(last) + "0000" + d[2:5]
	case last == '3':
		return ns + d[0:3] + "00000" + d[3:5]
	case last == '4':
		return ns + d[0:4] + "00000" + d[4:5]
	default:
		return ns + d[0:5] + "0000" + string(last)
	}
}

// compressUPCE returns the 7-digit UPC-E form of 11 UPC-A digits, if it has one.
func compressUPCE(a string) (string, bool) {
	if a[0] != '0' && a[0] != '1' {
		return "", false
	}
	ns, m, p := a[:1], a[1:6], a[6:11]
	var e string
	switch {
	case m[2] <= '2' && m[3:5] == "00" && p[:2] == "00":
		e = m[0:2] + p[2:5] + m[2:3]
	case m[3:5] == "00" && p[:3] == "000":
		e = m[0:3] + p[3:5] + "3"
	case m[4] == '0' && p[:4] == "0000":
		e = m[0:4] + p[4:5] + "4"
	case p[:4] == "0000" && p[4] >= '5':
		e = m + p[4:5]
	default:
		return "", false
	}
	if expandUPCE(ns+e) != a {
		return "", false
	}
	return ns + e, true
}
