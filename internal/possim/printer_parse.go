package possim

import (
	"errors"
	"fmt"
	"image"
	"image/draw"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
)

// This file is the simulator's reading of an ESC/POS byte stream. It is written from the
// Epson ESC/POS command reference, not from drivers/escpos, so that tests can use it to
// prove what the driver sends.

// Limits that keep hostile streams from exhausting memory.
const (
	maxRasterWidthBytes = 256  // 2048 dots
	maxRasterHeight     = 4096 // dots per image (bands are joined up to this)
	maxQRStore          = 7089
	maxLineCells        = 4096
	maxElements         = 10000    // per job
	maxJobDots          = 32 << 20 // raster dots per job (a 2048-dot-wide image 16384 dots long)
)

// errIdle is what a byteSource may return when no byte came for a while and the parser is
// between commands; the parser's caller ends the current job and goes on.
var errIdle = errors.New("idle")

// byteSource feeds the parser. boundary is true when the parser is between commands, the
// only place where an idle pause may end a job.
type byteSource interface {
	next(boundary bool) (byte, error)
}

// cell is one printed character with the print mode it was received in: the printer
// applies ESC ! / GS ! / ESC E / ESC - to each character, not to the line.
type cell struct {
	r    rune
	cols int // 1, or 2 for a Chinese double-byte character
	bold bool
	ul   bool // underlined
	wmul int  // width multiplier, 1–8
	hmul int  // height multiplier, 1–8
}

// width is the cell's width in font A columns.
func (c cell) width() int { return c.cols * max(c.wmul, 1) }

// elemKind is what an element of a job is.
type elemKind int

const (
	elemText elemKind = iota
	elemRaster
	elemQR // native GS ( k
	elemCut
	elemDrawer
	elemFeed
	elemPaperOut
	elemBarcode // GS k
)

// element is one thing printed, in order.
type element struct {
	kind  elemKind
	cells []cell
	align byte
	// raster: GS v 0, ESC * (a line of bit image) or GS ( L graphics
	img     *image.Gray // white background, black dots
	imgKind string      // "raster", "column" or "graphics"
	joinKey string      // consecutive images with the same key are bands of one image
	// barcode
	bc *barcode
	// native QR
	qrData   []byte
	qrModule int
	qrEC     byte
	// feed
	lines int
}

// parser is the printer's state machine. It calls the hooks for what a printer does:
// answer a real-time status request, and add an element to the current job.
type parser struct {
	src      byteSource
	answer   func(n byte)      // DLE EOT n
	emit     func(e *element)  // a printed element
	boundary func()            // ESC @ (a job may end here)
	unknown  func(desc string) // a byte sequence the parser does not know

	chinese  bool
	codePage byte // ESC t n
	bootPage byte // the code page at power-on and after ESC @
	bold     bool
	ul       bool
	wmul     int
	hmul     int
	align    byte
	line     []cell
	lineImg  *image.Gray // ESC * bit images on the current line, side by side

	bcHeight int  // GS h, dots
	bcModule int  // GS w, dots per narrow module
	bcHRI    byte // GS H: 0 none, 1 above, 2 below, 3 both

	graphics *image.Gray // GS ( L fn 112/113: stored, printed by fn 50

	twoD byte // GS Z: the symbol ESC Z prints

	qrStore  []byte
	qrModule int
	qrEC     byte
}

func newParser(src byteSource) *parser {
	p := &parser{src: src}
	p.reset()
	p.answer = func(byte) {}
	p.emit = func(*element) {}
	p.boundary = func() {}
	p.unknown = func(string) {}
	return p
}

// reset is ESC @. Chinese mode survives it (on Chinese-market printers that boot in it,
// ESC @ does not leave it; FS . does); the code page goes back to the power-on one.
func (p *parser) reset() {
	p.codePage = p.bootPage
	p.bold, p.ul = false, false
	p.wmul, p.hmul = 1, 1
	p.align = 0
	p.line = p.line[:0]
	p.lineImg = nil
	p.qrModule, p.qrEC = 3, 48
	p.bcHeight, p.bcModule, p.bcHRI = 162, 3, 0
	p.graphics = nil
	p.twoD = 0
}

// style returns a cell of rune r in the current print mode.
func (p *parser) style(r rune, cols int) cell {
	return cell{r: r, cols: cols, bold: p.bold, ul: p.ul, wmul: p.wmul, hmul: p.hmul}
}

// run parses until the source fails and returns its error.
func (p *parser) run() error {
	for {
		b, err := p.src.next(true)
		if err == errIdle {
			p.boundary()
			continue
		}
		if err != nil {
			return err
		}
		if err := p.byte(b); err != nil {
			return err
		}
	}
}

func (p *parser) arg() (byte, error) { return p.src.next(false) }

// args reads n argument bytes. It grows its buffer as bytes come, so that a command that
// announces more data than follows costs no more memory than the data.
func (p *parser) args(n int) ([]byte, error) {
	out := make([]byte, 0, min(n, 4096))
	for range n {
		b, err := p.arg()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (p *parser) skip(n int) error {
	for ; n > 0; n-- {
		if _, err := p.arg(); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) byte(b byte) error {
	switch {
	case b == 0x0A:
		p.printLine()
		return nil
	case b == 0x0D || b == 0x00:
		return nil
	case b == 0x09:
		for range 8 - len(p.line)%8 {
			p.addCell(p.style(' ', 1))
		}
		return nil
	case b == 0x10:
		return p.dle()
	case b == 0x1B:
		return p.esc()
	case b == 0x1C:
		return p.fs()
	case b == 0x1D:
		return p.gs()
	case b < 0x20 || b == 0x7F:
		p.unknown(fmt.Sprintf("control byte 0x%02X", b))
		return nil
	case b < 0x80:
		p.addCell(p.style(rune(b), 1))
		return nil
	}
	return p.highByte(b)
}

// highByte reads a character from 0x80–0xFF: a GB18030 sequence in Chinese mode, else one
// byte of the code page.
func (p *parser) highByte(b byte) error {
	if !p.chinese || b == 0x80 || b == 0xFF {
		p.addCell(p.style(codePageRune(p.codePage, b), 1))
		return nil
	}
	seq := []byte{b}
	b2, err := p.arg()
	if err != nil {
		return err
	}
	seq = append(seq, b2)
	if b2 >= 0x30 && b2 <= 0x39 { // four-byte GB18030
		more, err := p.args(2)
		if err != nil {
			return err
		}
		seq = append(seq, more...)
	}
	r := rune(0xFFFD)
	if dec, err := simplifiedchinese.GB18030.NewDecoder().Bytes(seq); err == nil {
		if rs := []rune(string(dec)); len(rs) == 1 {
			r = rs[0]
		}
	}
	p.addCell(p.style(r, 2))
	return nil
}

func codePageRune(n, b byte) rune {
	cm := charmap.CodePage437
	switch n {
	case 2:
		cm = charmap.CodePage850
	case 16:
		cm = charmap.Windows1252
	case 19:
		cm = charmap.CodePage858
	}
	return cm.DecodeByte(b)
}

func (p *parser) addCell(c cell) {
	if len(p.line) < maxLineCells {
		p.line = append(p.line, c)
	}
}

// printLine prints the buffered line (LF), an empty line included. A line that holds
// ESC * bit images prints them (as one band of a column image) and its text, if any, on
// its own line.
func (p *parser) printLine() {
	if p.lineImg != nil {
		img := p.lineImg
		p.lineImg = nil
		if len(p.line) > 0 {
			p.printLine()
		}
		p.emit(&element{kind: elemRaster, img: img, imgKind: "column", joinKey: fmt.Sprintf("column %d", img.Rect.Dx()), align: p.align})
		return
	}
	p.emit(&element{kind: elemText, cells: append([]cell(nil), p.line...), align: p.align})
	p.line = p.line[:0]
}

// flushLine prints a pending partial line before a command that prints something else.
func (p *parser) flushLine() {
	if len(p.line) > 0 || p.lineImg != nil {
		p.printLine()
	}
}

func (p *parser) dle() error {
	c, err := p.arg()
	if err != nil {
		return err
	}
	switch c {
	case 0x04: // DLE EOT n: real-time status
		n, err := p.arg()
		if err != nil {
			return err
		}
		p.answer(n)
	case 0x05: // DLE ENQ n: real-time request (recover, clear)
		return p.skip(1)
	case 0x14: // DLE DC4 fn m t: fn 1 is a real-time drawer pulse
		a, err := p.args(3)
		if err != nil {
			return err
		}
		if a[0] == 1 {
			p.emit(&element{kind: elemDrawer})
		}
	default:
		p.unknown(fmt.Sprintf("DLE 0x%02X", c))
	}
	return nil
}

func (p *parser) esc() error {
	c, err := p.arg()
	if err != nil {
		return err
	}
	switch c {
	case '@': // clears the print buffer: a pending partial line is not printed
		p.reset()
		p.boundary()
		return nil
	case 'E', 'G':
		n, err := p.arg()
		p.bold = n&1 == 1
		return err
	case '!': // print mode: bit 3 emphasized, 4 double height, 5 double width, 7 underline
		n, err := p.arg()
		p.bold = n&0x08 != 0
		p.hmul = 1 + int(n>>4&1)
		p.wmul = 1 + int(n>>5&1)
		p.ul = n&0x80 != 0
		return err
	case '-': // underline: 0/48 off, 1/49 one dot, 2/50 two dots
		n, err := p.arg()
		p.ul = n == 1 || n == 2 || n == 49 || n == 50
		return err
	case '*':
		return p.bitImage()
	case 'a':
		n, err := p.arg()
		if n >= '0' {
			n -= '0'
		}
		if n <= 2 {
			p.align = n
		}
		return err
	case 'd':
		n, err := p.arg()
		p.flushLine()
		p.emit(&element{kind: elemFeed, lines: int(n)})
		return err
	case 'J':
		n, err := p.arg()
		p.flushLine()
		p.emit(&element{kind: elemFeed, lines: (int(n) + 23) / 24})
		return err
	case 't':
		n, err := p.arg()
		p.codePage = n
		return err
	case 'p':
		p.emit(&element{kind: elemDrawer})
		return p.skip(3)
	case 'i', 'm':
		p.flushLine()
		p.emit(&element{kind: elemCut})
		return nil
	case '2', 'S': // default line spacing; standard mode
		return nil
	case 'Z':
		return p.twoDCode()
	case '3', 'M', 'R', '{', 'V', ' ', 'U', 'c', '4', 'r', 'T', '=':
		if c == 'c' { // ESC c 3 n, ESC c 4 n, ESC c 5 n
			return p.skip(2)
		}
		return p.skip(1)
	case '$', '\\': // absolute and relative print position
		return p.skip(2)
	case 'D': // horizontal tab positions, up to 32, ended by NUL
		for range 33 {
			b, err := p.arg()
			if err != nil || b == 0 {
				return err
			}
		}
		return nil
	}
	p.unknown(fmt.Sprintf("ESC 0x%02X", c))
	return nil
}

func (p *parser) fs() error {
	c, err := p.arg()
	if err != nil {
		return err
	}
	switch c {
	case '&':
		p.chinese = true
	case '.':
		p.chinese = false
	case '!', '-', 'C', 'W':
		return p.skip(1)
	case 'S':
		return p.skip(2)
	default:
		p.unknown(fmt.Sprintf("FS 0x%02X", c))
	}
	return nil
}

func (p *parser) gs() error {
	c, err := p.arg()
	if err != nil {
		return err
	}
	switch c {
	case '!': // character size: high nibble width-1, low nibble height-1 (each 0–7)
		n, err := p.arg()
		p.wmul = 1 + int(n>>4&7)
		p.hmul = 1 + int(n&7)
		return err
	case 'h':
		n, err := p.arg()
		if n >= 1 {
			p.bcHeight = int(n)
		}
		return err
	case 'w':
		n, err := p.arg()
		if n >= 1 && n <= 6 {
			p.bcModule = int(n)
		}
		return err
	case 'H':
		n, err := p.arg()
		if n >= '0' {
			n -= '0'
		}
		if n <= 3 {
			p.bcHRI = n
		}
		return err
	case '8':
		return p.gs8()
	case 'Z': // select the 2D code of ESC Z: 0 PDF417, 1 DataMatrix, 2 QR
		n, err := p.arg()
		p.twoD = n
		return err
	case 'V':
		m, err := p.arg()
		if err != nil {
			return err
		}
		if m == 65 || m == 66 {
			n, err := p.arg()
			if err != nil {
				return err
			}
			p.flushLine()
			p.emit(&element{kind: elemFeed, lines: int(n)})
		}
		p.flushLine()
		p.emit(&element{kind: elemCut})
		return nil
	case 'v':
		return p.raster()
	case '(':
		return p.gsParen()
	case 'B', 'f', 'a', 'I', 'b', 'E', 'r':
		return p.skip(1)
	case 'L', 'W', 'P':
		return p.skip(2)
	case 'k':
		return p.barcode()
	}
	p.unknown(fmt.Sprintf("GS 0x%02X", c))
	return nil
}

// raster reads GS v 0 m xL xH yL yH d1…dk (m: bit 0 double width, bit 1 double height)
// and joins it to the image above it when that is a raster of the same width (a QR code
// sent in bands is one image).
func (p *parser) raster() error {
	a, err := p.args(6)
	if err != nil {
		return err
	}
	if a[0] != '0' {
		p.unknown(fmt.Sprintf("GS v 0x%02X", a[0]))
		return nil
	}
	wb := int(a[2]) | int(a[3])<<8
	h := int(a[4]) | int(a[5])<<8
	if wb == 0 || h == 0 || wb > maxRasterWidthBytes || h > maxRasterHeight {
		p.unknown(fmt.Sprintf("GS v 0 of %d×%d bytes (too large or empty)", wb, h))
		return p.skip(wb * h)
	}
	data, err := p.args(wb * h)
	if err != nil {
		return err
	}
	sx, sy := 1+int(a[1]&1), 1+int(a[1]>>1&1)
	p.flushLine()
	img := scaleImage(rasterImage(wb, h, data), sx, sy, maxRasterWidthBytes*8)
	p.emit(&element{kind: elemRaster, img: img, imgKind: "raster", joinKey: fmt.Sprintf("raster %d", img.Rect.Dx()), align: p.align})
	return nil
}

func rasterImage(wb, h int, data []byte) *image.Gray {
	img := blankImage(wb*8, h)
	for y := 0; y < h; y++ {
		for x := 0; x < wb*8; x++ {
			if data[y*wb+x/8]&(0x80>>(x%8)) != 0 {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	return img
}

// columnImage makes an image from column-format data: for each of w columns, (h+7)/8
// bytes from the top, the most significant bit the topmost dot.
func columnImage(w, h int, data []byte) *image.Gray {
	img := blankImage(w, h)
	per := (h + 7) / 8
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			if data[x*per+y/8]&(0x80>>(y%8)) != 0 {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	return img
}

func blankImage(w, h int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, w, h))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	return img
}

// scaleImage enlarges img sx times across and sy times down, no wider than maxW dots
// (the printer drops what does not fit on the paper).
func scaleImage(img *image.Gray, sx, sy, maxW int) *image.Gray {
	if sx == 1 && sy == 1 && img.Rect.Dx() <= maxW {
		return img
	}
	w, h := min(img.Rect.Dx()*sx, maxW), img.Rect.Dy()*sy
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			out.Pix[y*out.Stride+x] = img.Pix[(y/sy)*img.Stride+x/sx]
		}
	}
	return out
}

// bitImage reads ESC * m nL nH d1…dk: one line of bit image in column format, 8 dots
// high (m 0, 1) or 24 (m 32, 33), single density (m 0, 32: each dot two dots wide) or
// double (m 1, 33); the 8-dot modes are three times as tall, at a third of the vertical
// density (ESC/POS references: 8-dot modes 68 dpi down, single density 101 dpi across on a
// 203 dpi head). It goes into the line buffer, beside any image already there, and prints with
// the line (LF); consecutive lines of the same width are one image (the bands of a picture).
func (p *parser) bitImage() error {
	a, err := p.args(3)
	if err != nil {
		return err
	}
	m, n := a[0], int(a[1])|int(a[2])<<8
	var per, sx, sy int
	switch m {
	case 0:
		per, sx, sy = 1, 2, 3
	case 1:
		per, sx, sy = 1, 1, 3
	case 32:
		per, sx, sy = 3, 2, 1
	case 33:
		per, sx, sy = 3, 1, 1
	default:
		// Without a known mode the data length is unknown: the rest prints as the printer
		// would read it.
		p.unknown(fmt.Sprintf("ESC * mode %d", m))
		return nil
	}
	if n == 0 || n > maxRasterWidthBytes*8 {
		p.unknown(fmt.Sprintf("ESC * of %d dots (too wide or empty)", n))
		return p.skip(n * per)
	}
	data, err := p.args(n * per)
	if err != nil {
		return err
	}
	img := scaleImage(columnImage(n, per*8, data), sx, sy, maxRasterWidthBytes*8)
	if p.lineImg == nil {
		p.lineImg = img
		return nil
	}
	p.lineImg = besides(p.lineImg, img, maxRasterWidthBytes*8)
	return nil
}

// besides returns b to the right of a, as tall as the taller, no wider than maxW.
func besides(a, b *image.Gray, maxW int) *image.Gray {
	w := min(a.Rect.Dx()+b.Rect.Dx(), maxW)
	out := blankImage(w, max(a.Rect.Dy(), b.Rect.Dy()))
	draw.Draw(out, a.Rect, a, image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(a.Rect.Dx(), 0, w, b.Rect.Dy()), b, image.Point{}, draw.Src)
	return out
}

// gs8 reads GS 8 L p1 p2 p3 p4 m fn …, the long form of GS ( L.
func (p *parser) gs8() error {
	c, err := p.arg()
	if err != nil {
		return err
	}
	a, err := p.args(4)
	if err != nil {
		return err
	}
	n := int(a[0]) | int(a[1])<<8 | int(a[2])<<16 | int(a[3])<<24
	if c != 'L' {
		p.unknown(fmt.Sprintf("GS 8 0x%02X", c))
		return p.skip(n)
	}
	return p.graphicsCmd(n)
}

// graphicsCmd reads the n bytes after GS ( L pL pH / GS 8 L p1–p4: m fn and parameters.
// fn 112 (raster) and 113 (column format) store graphics in the print buffer, fn 50 (or 2)
// prints it; the other functions (NV graphics, download graphics, densities) are read and
// left alone.
func (p *parser) graphicsCmd(n int) error {
	if n < 2 {
		return p.skip(n)
	}
	hdr, err := p.args(2)
	if err != nil {
		return err
	}
	fn, rest := hdr[1], n-2
	switch fn {
	case 2, 50:
		if err := p.skip(rest); err != nil {
			return err
		}
		p.flushLine()
		if p.graphics == nil {
			p.unknown("GS ( L print with no graphics stored")
			return nil
		}
		img := p.graphics
		p.graphics = nil
		p.emit(&element{kind: elemRaster, img: img, imgKind: "graphics", align: p.align})
		return nil
	case 112, 113:
		if rest < 8 {
			return p.skip(rest)
		}
		a, err := p.args(8) // a bx by c xL xH yL yH
		if err != nil {
			return err
		}
		rest -= 8
		w, h := int(a[4])|int(a[5])<<8, int(a[6])|int(a[7])<<8
		k := (w + 7) / 8 * h
		if fn == 113 {
			k = w * ((h + 7) / 8)
		}
		if w == 0 || h == 0 || w > maxRasterWidthBytes*8 || h > maxRasterHeight || k > rest {
			p.unknown(fmt.Sprintf("GS ( L fn %d of %d×%d dots (too large, empty or short)", fn, w, h))
			return p.skip(rest)
		}
		data, err := p.args(k)
		if err != nil {
			return err
		}
		if err := p.skip(rest - k); err != nil { // further colour planes of a multi-tone image
			return err
		}
		var img *image.Gray
		if fn == 112 {
			img = copyGray(rasterImage((w+7)/8, h, data).SubImage(image.Rect(0, 0, w, h)).(*image.Gray))
		} else {
			img = columnImage(w, h, data)
		}
		sx, sy := 1, 1 // bx, by: 1 or 2 (times as wide, as tall)
		if a[1] == 2 {
			sx = 2
		}
		if a[2] == 2 {
			sy = 2
		}
		p.graphics = scaleImage(img, sx, sy, maxRasterWidthBytes*8)
		return nil
	}
	return p.skip(rest)
}

// copyGray returns img with its own pixels, origin at 0,0.
func copyGray(img *image.Gray) *image.Gray {
	out := image.NewGray(image.Rect(0, 0, img.Rect.Dx(), img.Rect.Dy()))
	draw.Draw(out, out.Rect, img, img.Rect.Min, draw.Src)
	return out
}

// gsParen reads GS ( fn pL pH …: QR (GS ( k, cn 49) and graphics (GS ( L) are
// understood; other functions and symbols are skipped.
func (p *parser) gsParen() error {
	a, err := p.args(3)
	if err != nil {
		return err
	}
	n := int(a[1]) | int(a[2])<<8
	if a[0] == 'L' {
		return p.graphicsCmd(n)
	}
	if a[0] != 'k' || n < 2 {
		return p.skip(n)
	}
	hdr, err := p.args(2)
	if err != nil {
		return err
	}
	cn, fn := hdr[0], hdr[1]
	rest := n - 2
	if cn != 49 {
		return p.skip(rest)
	}
	switch fn {
	case 65, 67, 69, 81: // model, module size, error correction, print
		args, err := p.args(rest)
		if err != nil {
			return err
		}
		if rest >= 1 {
			switch fn {
			case 67: // module size 1–16 dots; others are ignored
				if args[0] >= 1 && args[0] <= 16 {
					p.qrModule = int(args[0])
				}
			case 69:
				p.qrEC = args[0]
			case 81:
				p.flushLine()
				if len(p.qrStore) == 0 {
					p.unknown("GS ( k print with no QR data stored")
					return nil
				}
				p.emit(&element{kind: elemQR, qrData: append([]byte(nil), p.qrStore...), qrModule: p.qrModule, qrEC: p.qrEC, align: p.align})
			}
		}
		return nil
	case 80: // store: m = 48, then the data
		if rest < 1 {
			return nil
		}
		if _, err := p.arg(); err != nil {
			return err
		}
		if rest-1 > maxQRStore {
			p.unknown(fmt.Sprintf("GS ( k store of %d bytes (more than a QR code holds)", rest-1))
			p.qrStore = p.qrStore[:0]
			return p.skip(rest - 1)
		}
		data, err := p.args(rest - 1)
		p.qrStore = data
		return err
	}
	return p.skip(rest)
}

// twoDCode reads ESC Z v r k nL nH d1…dn, the 2D code command of Chinese-market printers
// (HCC POS80 / Xprinter / Bematech manuals: "Print 2-D bar code", the symbol chosen by
// GS Z n): for QR, v is the version (0 automatic), r the error correction level (L, M, Q,
// H), k the module size. QR codes print; PDF417 and DataMatrix are read and reported.
func (p *parser) twoDCode() error {
	a, err := p.args(5)
	if err != nil {
		return err
	}
	n := int(a[3]) | int(a[4])<<8
	if p.twoD != 2 || n == 0 || n > maxQRStore {
		p.unknown(fmt.Sprintf("ESC Z symbol %d of %d bytes (only QR codes up to %d bytes are drawn)", p.twoD, n, maxQRStore))
		return p.skip(n)
	}
	data, err := p.args(n)
	if err != nil {
		return err
	}
	p.flushLine()
	p.emit(&element{kind: elemQR, qrData: data, qrModule: min(max(int(a[2]), 1), 16), qrEC: a[1], align: p.align})
	return nil
}

// barcode reads GS k: m 0–6 data NUL (function A), m 65–73 n data (function B). A
// barcode the printer cannot print (bad data for its symbology) prints nothing, as on a
// printer.
func (p *parser) barcode() error {
	m, err := p.arg()
	if err != nil {
		return err
	}
	var data []byte
	if m <= 6 {
		for {
			b, err := p.arg()
			if err != nil {
				return err
			}
			if b == 0 {
				break
			}
			if len(data) == 255 {
				p.unknown("GS k data without its NUL in 255 bytes")
				return nil
			}
			data = append(data, b)
		}
	} else {
		n, err := p.arg()
		if err != nil {
			return err
		}
		if data, err = p.args(int(n)); err != nil {
			return err
		}
	}
	p.flushLine()
	bc, err := newBarcode(m, data)
	if err != nil {
		p.unknown(fmt.Sprintf("GS k %d: %v", m, err))
		return nil
	}
	bc.height, bc.module, bc.hri = p.bcHeight, p.bcModule, p.bcHRI
	p.emit(&element{kind: elemBarcode, bc: bc, align: p.align})
	return nil
}
