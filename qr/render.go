package qr

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/encoder"
	goqrcode "github.com/skip2/go-qrcode"

	"github.com/posagent/posagent"
)

// Level is a QR code error-correction level. A higher level survives more damage (a
// scratched receipt, a glare spot on a display) at the price of a bigger code.
type Level int

// Error-correction levels. The zero value, LevelAuto, asks Encode to choose (see Encode).
const (
	LevelAuto Level = iota // chosen by Encode for the payload
	LevelL                 // about 7% of the codewords can be restored
	LevelM                 // about 15%
	LevelQ                 // about 25%
	LevelH                 // about 30%
)

// String returns "L", "M", "Q", "H" or "auto".
func (l Level) String() string {
	switch l {
	case LevelAuto:
		return "auto"
	case LevelL:
		return "L"
	case LevelM:
		return "M"
	case LevelQ:
		return "Q"
	case LevelH:
		return "H"
	}
	return fmt.Sprintf("Level(%d)", int(l))
}

// QuietZone is the light margin, in modules, that the QR specification (ISO/IEC 18004)
// requires on every side of a code. WritePNG, ASCII and Raster always include it; Image
// takes the margin as an argument so that a layout can provide it instead.
const QuietZone = 4

// PNG sizes for WritePNG.
const (
	DefaultPNGSize = 512  // used when WritePNG is given a size ≤ 0
	MaxPNGSize     = 8192 // larger requests are refused
)

// Automatic level selection (see Encode).
const (
	autoSmallVersion = 10 // 57×57 modules: scannable from a 2×20 display or a 58 mm receipt
	autoMaxVersionM  = 25 // 117×117 modules
)

// EncodeOptions tunes Encode. The zero value is what the terminal uses.
type EncodeOptions struct {
	// Level is the error-correction level; LevelAuto (the zero value) chooses it for the
	// payload as described on Encode.
	Level Level
}

// Code is an encoded QR code: its module matrix and how it was built. The exported fields
// describe the code (changing them does not change the modules); the methods render it
// and are safe for concurrent use.
type Code struct {
	Text    string // the text encoded, as given to Encode
	Version int    // 1–40; the code is 17+4·Version modules wide
	Level   Level  // the error-correction level used (never LevelAuto)
	// ECI is true when the text is written as one Byte-mode segment preceded by an ECI 26
	// (UTF-8) designator, which Encode does for every text with non-ASCII characters.
	ECI bool

	size int
	dark []bool // size×size modules, row by row; true is a dark module
}

// Encode encodes text as a QR code.
//
// Text must be non-empty valid UTF-8 that fits in a QR code: at level L, up to 7089 digits,
// 4296 upper-case alphanumerics or 2953 bytes of other ASCII text, 2952 bytes of UTF-8
// text with non-ASCII characters; less at higher levels. Other input is refused with an
// error that wraps posagent.ErrInvalidInput.
//
// Pure ASCII text is encoded by github.com/skip2/go-qrcode, which splits it into
// numeric, alphanumeric and byte segments for the smallest code. Every decoder reads such
// a code the same way, because ASCII bytes mean the same in every character set.
//
// Text with non-ASCII characters (a merchant name in Chinese, Thai, an emoji) is written
// as ONE Byte-mode segment holding the UTF-8 bytes, preceded by an ECI 26 (UTF-8)
// designator, by the gozxing encoder. go-qrcode cannot write an ECI header, and without
// one a decoder has to guess the character set of byte data: ZXing-based scanners guess
// Shift_JIS for some Chinese UTF-8 text and show the wrong characters, which breaks an
// EMV payload whose lengths count characters and whose CRC covers the UTF-8 bytes.
//
// With LevelAuto the level is the highest of H, Q and M that keeps the code at version 10
// (57×57 modules) or below; if even M needs more, M is used up to version 25, and L
// beyond. Small codes matter more than spare redundancy on a terminal: the code is shown
// on a small display or printed on a 58 mm receipt and must be read by a phone, and the
// bigger the version the smaller each module becomes.
func Encode(text string, opts EncodeOptions) (*Code, error) {
	if text == "" {
		return nil, posagent.Invalidf("encode qr: empty text")
	}
	if !utf8.ValidString(text) {
		return nil, posagent.Invalidf("encode qr: text is not valid UTF-8")
	}
	if opts.Level < LevelAuto || opts.Level > LevelH {
		return nil, posagent.Invalidf("encode qr: unknown error-correction level %d", int(opts.Level))
	}
	ascii := isASCII(text)

	level := opts.Level
	if level == LevelAuto {
		level = LevelL
		for _, l := range []Level{LevelH, LevelQ, LevelM} {
			v, ok := fitVersion(text, ascii, l)
			if ok && v <= autoSmallVersion {
				level = l
				break
			}
		}
		if level == LevelL {
			if v, ok := fitVersion(text, ascii, LevelM); ok && v <= autoMaxVersionM {
				level = LevelM
			}
		}
	}
	if _, ok := fitVersion(text, ascii, level); !ok {
		return nil, posagent.Invalidf("encode qr: text too long for a QR code at level %s (%d bytes)",
			level, len(text))
	}

	var c *Code
	var err error
	if ascii {
		c, err = encodeASCII(text, level)
	} else {
		c, err = encodeUTF8(text, level)
	}
	if err != nil {
		return nil, fmt.Errorf("encode qr: %w", err)
	}
	return c, nil
}

// fitVersion returns the smallest version that holds text at level l, and false when no
// version does. It does not build the matrix.
func fitVersion(text string, ascii bool, l Level) (int, bool) {
	if ascii {
		q, err := goqrcode.New(text, goLevel(l))
		if err != nil {
			return 0, false
		}
		return q.VersionNumber, true
	}
	return byteModeVersion(len(text), l)
}

// byteModeVersion returns the smallest version that holds n bytes in one Byte-mode segment
// after an ECI designator, as encodeUTF8 writes them.
func byteModeVersion(n int, l Level) (int, bool) {
	for v := 1; v <= 40; v++ {
		ver, err := decoder.Version_GetVersionForNumber(v)
		if err != nil {
			return 0, false
		}
		countBits := 16 // character count indicator: 8 bits up to version 9, 16 from 10
		if v <= 9 {
			countBits = 8
		}
		bits := 4 + 8 + 4 + countBits + 8*n // ECI mode + ECI 26 + Byte mode + count + data
		data := ver.GetTotalCodewords() - ver.GetECBlocksForLevel(zxLevel(l)).GetTotalECCodewords()
		if bits <= 8*data {
			return v, true
		}
	}
	return 0, false
}

func encodeASCII(text string, l Level) (c *Code, err error) {
	defer func() {
		// go-qrcode reports internal inconsistencies with log.Panic; a terminal must not
		// go down because of one code.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("go-qrcode: internal error: %v", r)
		}
	}()
	q, err := goqrcode.New(text, goLevel(l))
	if err != nil {
		return nil, fmt.Errorf("go-qrcode: %w", err)
	}
	q.DisableBorder = true
	bm := q.Bitmap()
	size := len(bm)
	if size != 17+4*q.VersionNumber {
		return nil, fmt.Errorf("go-qrcode: version %d matrix is %d modules wide", q.VersionNumber, size)
	}
	c = &Code{Text: text, Version: q.VersionNumber, Level: l, size: size, dark: make([]bool, size*size)}
	for y, row := range bm {
		if len(row) != size {
			return nil, fmt.Errorf("go-qrcode: row %d is %d modules wide, want %d", y, len(row), size)
		}
		copy(c.dark[y*size:], row)
	}
	return c, nil
}

func encodeUTF8(text string, l Level) (c *Code, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("gozxing: internal error: %v", r)
		}
	}()
	hints := map[gozxing.EncodeHintType]interface{}{
		// Makes the encoder write ECI 26 before the Byte-mode segment that non-ASCII
		// text always gets.
		gozxing.EncodeHintType_CHARACTER_SET: "UTF-8",
	}
	q, werr := encoder.Encoder_encode(text, zxLevel(l), hints)
	if werr != nil {
		return nil, fmt.Errorf("gozxing: %w", werr)
	}
	if q.GetMode() != decoder.Mode_BYTE {
		return nil, fmt.Errorf("gozxing: chose mode %v, want byte", q.GetMode())
	}
	m := q.GetMatrix()
	v := q.GetVersion().GetVersionNumber()
	size := m.GetWidth()
	if size != 17+4*v || m.GetHeight() != size {
		return nil, fmt.Errorf("gozxing: version %d matrix is %d×%d modules", v, size, m.GetHeight())
	}
	c = &Code{Text: text, Version: v, Level: l, ECI: true, size: size, dark: make([]bool, size*size)}
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			c.dark[y*size+x] = m.Get(x, y) == 1
		}
	}
	return c, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func goLevel(l Level) goqrcode.RecoveryLevel {
	switch l {
	case LevelM:
		return goqrcode.Medium
	case LevelQ:
		return goqrcode.High
	case LevelH:
		return goqrcode.Highest
	}
	return goqrcode.Low
}

func zxLevel(l Level) decoder.ErrorCorrectionLevel {
	switch l {
	case LevelM:
		return decoder.ErrorCorrectionLevel_M
	case LevelQ:
		return decoder.ErrorCorrectionLevel_Q
	case LevelH:
		return decoder.ErrorCorrectionLevel_H
	}
	return decoder.ErrorCorrectionLevel_L
}

// Size returns the width (and height) of the code in modules, without the quiet zone.
func (c *Code) Size() int { return c.size }

// Module reports whether the module at column x, row y is dark. (0, 0) is the top-left
// module; coordinates outside the code are in the quiet zone and report false (light).
func (c *Code) Module(x, y int) bool {
	if x < 0 || y < 0 || x >= c.size || y >= c.size {
		return false
	}
	return c.dark[y*c.size+x]
}

// Image renders the code as black modules on white, scale pixels per module (values
// below 1 mean 1), with a light margin of quiet modules on every side (negative means 0).
// Pass QuietZone unless the surrounding layout provides the margin: decoders need it.
// The image is (Size()+2·quiet)·scale pixels square, with its origin at (0, 0).
func (c *Code) Image(scale, quiet int) *image.Gray {
	scale = max(scale, 1)
	quiet = max(quiet, 0)
	n := (c.size + 2*quiet) * scale
	img := image.NewGray(image.Rect(0, 0, n, n))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	for y := 0; y < c.size; y++ {
		row := img.Pix[(quiet+y)*scale*img.Stride:]
		for x := 0; x < c.size; x++ {
			if c.dark[y*c.size+x] {
				px := row[(quiet+x)*scale:]
				for i := 0; i < scale; i++ {
					px[i] = 0
				}
			}
		}
		for i := 1; i < scale; i++ {
			copy(img.Pix[((quiet+y)*scale+i)*img.Stride:][:n], row[:n])
		}
	}
	return img
}

// WritePNG writes the code as a 1-bit PNG of at most sizePx pixels square, quiet zone
// included, using the largest whole number of pixels per module that fits (integer
// scaling keeps every module edge sharp). A code that does not fit at one pixel per module
// is written at one pixel per module, larger than asked. sizePx ≤ 0 means DefaultPNGSize;
// more than MaxPNGSize is refused.
func (c *Code) WritePNG(w io.Writer, sizePx int) error {
	if sizePx <= 0 {
		sizePx = DefaultPNGSize
	}
	if sizePx > MaxPNGSize {
		return posagent.Invalidf("write qr png: size %d px is more than the maximum %d", sizePx, MaxPNGSize)
	}
	scale := max(sizePx/(c.size+2*QuietZone), 1)
	g := c.Image(scale, QuietZone)
	img := &image.Paletted{
		Pix:     g.Pix,
		Stride:  g.Stride,
		Rect:    g.Rect,
		Palette: color.Palette{color.Gray{Y: 0}, color.Gray{Y: 0xFF}},
	}
	for i, v := range img.Pix {
		img.Pix[i] = v & 1 // 0x00 → index 0 (black), 0xFF → index 1 (white)
	}
	if err := png.Encode(w, img); err != nil {
		return fmt.Errorf("write qr png: %w", err)
	}
	return nil
}

// ASCII renders the code for a terminal with Unicode half blocks ("▀", "▄", "█" and
// space), two module rows per line and one column per module, which gives square modules
// in the usual 1:2 terminal cell. The quiet zone is included and lines end with "\n".
//
// With invert false, characters draw the dark modules: right for dark text on a light
// background. Most terminals show light text on a dark background; use invert true there,
// so that characters draw the light modules and the code keeps dark modules on light.
func (c *Code) ASCII(invert bool) string {
	n := c.size + 2*QuietZone
	// ink reports whether the character cell paints module (x, y) in the foreground colour.
	ink := func(x, y int) bool {
		if y >= n {
			return invert // below the last row: keep the quiet zone's colour
		}
		return c.Module(x-QuietZone, y-QuietZone) != invert
	}
	var b strings.Builder
	b.Grow((n + 1) / 2 * (n*3 + 1))
	for y := 0; y < n; y += 2 {
		for x := 0; x < n; x++ {
			top, bottom := ink(x, y), ink(x, y+1)
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// Raster is a 1-bit image laid out as the ESC/POS raster command GS v 0 expects: Height
// rows of WidthBytes bytes each, the most significant bit of a byte is the leftmost pixel,
// and a 1 bit is black (printed). Bits past the image's right edge are 0.
type Raster struct {
	WidthBytes, Height int
	Data               []byte
}

// Raster renders the code, quiet zone included, at scale dots per module (values below 1
// mean 1). The image is (Size()+2·QuietZone)·scale dots square; choose scale so that it
// fits the printer's width (384 dots on most 58 mm printers, 576 on 80 mm).
func (c *Code) Raster(scale int) Raster {
	scale = max(scale, 1)
	n := (c.size + 2*QuietZone) * scale
	r := Raster{WidthBytes: (n + 7) / 8, Height: n}
	r.Data = make([]byte, r.WidthBytes*r.Height)
	for y := 0; y < c.size; y++ {
		row := r.Data[(QuietZone+y)*scale*r.WidthBytes:][:r.WidthBytes]
		for x := 0; x < c.size; x++ {
			if !c.dark[y*c.size+x] {
				continue
			}
			for px := (QuietZone + x) * scale; px < (QuietZone+x+1)*scale; px++ {
				row[px/8] |= 0x80 >> (px % 8)
			}
		}
		for i := 1; i < scale; i++ {
			copy(r.Data[((QuietZone+y)*scale+i)*r.WidthBytes:][:r.WidthBytes], row)
		}
	}
	return r
}
