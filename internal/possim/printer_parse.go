package possim

import (
	"errors"
	"fmt"
	"image"

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

// cell is one printed character.
type cell struct {
	r    rune
	cols int // 1, or 2 for a Chinese double-byte character
	bold bool
}

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
)

// element is one thing printed, in order.
type element struct {
	kind  elemKind
	cells []cell
	align byte
	wmul  int // width multiplier
	hmul  int // height multiplier
	// raster
	img        *image.Gray // white background, black dots
	widthBytes int
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
	codePage byte
	bold     bool
	wmul     int
	hmul     int
	align    byte
	line     []cell

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

// reset is ESC @. Chinese mode survives it on Chinese-market printers that boot in it;
// this simulator boots in it too (as generic and Xprinter models do) and leaves it as it is.
func (p *parser) reset() {
	p.codePage = 0
	p.bold = false
	p.wmul, p.hmul = 1, 1
	p.align = 0
	p.line = p.line[:0]
	p.qrModule, p.qrEC = 3, 48
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
			p.addCell(cell{r: ' ', cols: 1})
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
		p.addCell(cell{r: rune(b), cols: 1, bold: p.bold})
		return nil
	}
	return p.highByte(b)
}

// highByte reads a character from 0x80–0xFF: a GB18030 sequence in Chinese mode, else one
// byte of the code page.
func (p *parser) highByte(b byte) error {
	if !p.chinese || b == 0x80 || b == 0xFF {
		p.addCell(cell{r: codePageRune(p.codePage, b), cols: 1, bold: p.bold})
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
	p.addCell(cell{r: r, cols: 2, bold: p.bold})
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

// printLine prints the buffered line (LF), an empty line included.
func (p *parser) printLine() {
	p.emit(&element{kind: elemText, cells: append([]cell(nil), p.line...), align: p.align, wmul: p.wmul, hmul: p.hmul})
	p.line = p.line[:0]
}

// flushLine prints a pending partial line before a command that prints something else.
func (p *parser) flushLine() {
	if len(p.line) > 0 {
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
	case '!':
		n, err := p.arg()
		p.bold = n&0x08 != 0
		p.hmul = 1 + int(n>>4&1)
		p.wmul = 1 + int(n>>5&1)
		return err
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
	case '2':
		return nil
	case '3', 'M', '-', 'R', '{', 'V', ' ', 'U', 'c':
		if c == 'c' { // ESC c 3 n, ESC c 4 n, ESC c 5 n
			return p.skip(2)
		}
		return p.skip(1)
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
	case '!':
		n, err := p.arg()
		p.wmul = 1 + int(n>>4&7)
		p.hmul = 1 + int(n&7)
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
	case 'B', 'H', 'h', 'w', 'f', 'a', 'I', 'b', 'E', 'r':
		return p.skip(1)
	case 'L', 'W', 'P':
		return p.skip(2)
	case 'k':
		return p.barcode()
	}
	p.unknown(fmt.Sprintf("GS 0x%02X", c))
	return nil
}

// raster reads GS v 0 m xL xH yL yH d1…dk and joins it to the image above it when that
// is a raster of the same width (a QR code sent in bands is one image).
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
	p.flushLine()
	p.emit(&element{kind: elemRaster, widthBytes: wb, img: rasterImage(wb, h, data), align: p.align})
	return nil
}

func rasterImage(wb, h int, data []byte) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, wb*8, h))
	for i := range img.Pix {
		img.Pix[i] = 0xFF
	}
	for y := 0; y < h; y++ {
		for x := 0; x < wb*8; x++ {
			if data[y*wb+x/8]&(0x80>>(x%8)) != 0 {
				img.Pix[y*img.Stride+x] = 0
			}
		}
	}
	return img
}

// gsParen reads GS ( fn pL pH …: QR (GS ( k, cn 49) is understood; other functions
// and symbols are skipped.
func (p *parser) gsParen() error {
	a, err := p.args(3)
	if err != nil {
		return err
	}
	n := int(a[1]) | int(a[2])<<8
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
			case 67:
				p.qrModule = int(args[0])
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

// barcode skips GS k: m 0–6 data NUL, m 65–79 n data.
func (p *parser) barcode() error {
	m, err := p.arg()
	if err != nil {
		return err
	}
	if m <= 6 {
		for i := 0; i < 256; i++ {
			b, err := p.arg()
			if err != nil || b == 0 {
				return err
			}
		}
		return nil
	}
	n, err := p.arg()
	if err != nil {
		return err
	}
	return p.skip(int(n))
}
