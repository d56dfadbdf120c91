package escpos

import (
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/unicode/norm"
)

// codePages are the ESC t tables a profile may name, with the number ESC t selects on
// Epson and compatible printers.
var codePages = map[string]struct {
	n  byte
	cm *charmap.Charmap
}{
	"pc437":   {0, charmap.CodePage437},
	"pc850":   {2, charmap.CodePage850},
	"pc858":   {19, charmap.CodePage858},
	"wpc1252": {16, charmap.Windows1252},
}

// charset turns text into the bytes a printer prints and tells how many columns each
// character takes on paper. The width is the printer's, not Unicode's: in Chinese mode
// every double-byte GB18030 character is printed with the 24×24 (two column) Chinese font,
// so "×" or "é" take two columns there and one column in a code page.
type charset struct {
	chinese bool
	gb      *encoding.Encoder
	cm      *charmap.Charmap
	cache   map[rune]glyph
}

func newCharset(p *Profile) *charset {
	c := &charset{chinese: p.Chinese}
	if p.Chinese {
		c.gb = simplifiedchinese.GB18030.NewEncoder()
	}
	if cp, ok := codePages[p.CodePage]; ok {
		c.cm = cp.cm
	} else {
		c.cm = charmap.CodePage437
	}
	return c
}

// glyph is one printed character: its bytes and its width in columns.
type glyph struct {
	b    []byte
	cols int
}

// glyphs encodes s (NFC-normalised first, so that "e" + U+0301 prints as "é") as the
// printer will print it. A character the printer cannot print becomes "?": in Chinese
// mode, one without a double-byte GB18030 code (GB18030's four-byte codes, emoji and rare
// ideographs, are not in the fonts of receipt printers); in a code page, one the page
// lacks. Zero-width characters are dropped.
func (c *charset) glyphs(s string) []glyph {
	if !isASCII(s) {
		s = norm.NFC.String(s)
	}
	out := make([]glyph, 0, len(s))
	for _, r := range s {
		if g := c.glyph(r); g.cols > 0 {
			out = append(out, g)
		}
	}
	return out
}

// ascii holds the glyphs of printable ASCII, the same in every mode.
var ascii = func() (t [128]glyph) {
	for r := 0x20; r < 0x7F; r++ {
		t[r] = glyph{[]byte{byte(r)}, 1}
	}
	return t
}()

// glyph encodes one character (see glyphs); cols is 0 for a character that prints nothing.
func (c *charset) glyph(r rune) glyph {
	if r < 0x80 {
		return ascii[r]
	}
	if g, ok := c.cache[r]; ok {
		return g
	}
	g := glyph{[]byte{'?'}, 1}
	switch {
	case isZeroWidth(r):
		g = glyph{}
	case c.chinese:
		var buf [4]byte
		n := utf8.EncodeRune(buf[:], r)
		if b, err := c.gb.Bytes(buf[:n]); err == nil && len(b) == 2 {
			g = glyph{b, 2}
		}
	default:
		if b, ok := c.cm.EncodeRune(r); ok {
			g = glyph{[]byte{b}, 1}
		}
	}
	if c.cache == nil {
		c.cache = map[rune]glyph{}
	}
	if len(c.cache) < 4096 {
		c.cache[r] = g
	}
	return g
}

// runeWidth is the columns r takes (without normalisation).
func (c *charset) runeWidth(r rune) int { return c.glyph(r).cols }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// width returns the number of columns s takes on paper.
func (c *charset) width(s string) int {
	if !isASCII(s) {
		s = norm.NFC.String(s)
	}
	n := 0
	for _, r := range s {
		n += c.runeWidth(r)
	}
	return n
}

func isZeroWidth(r rune) bool {
	switch {
	case r == 0x200B || r == 0x200C || r == 0x200D || r == 0xFEFF || r == 0x00AD:
		return true
	case r >= 0x0300 && r <= 0x036F: // combining marks left over after NFC
		return true
	case r >= 0xFE00 && r <= 0xFE0F: // variation selectors
		return true
	}
	return false
}
