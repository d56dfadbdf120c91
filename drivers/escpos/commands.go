package escpos

import "github.com/posagent/posagent/qr"

// The ESC/POS commands the driver sends, as functions that return the bytes. Only commands
// that every profile in configs/printers understands are here; each names its Epson
// mnemonic.

// Control bytes.
const (
	LF  = 0x0A
	DLE = 0x10
	EOT = 0x04
	ESC = 0x1B
	FS  = 0x1C
	GS  = 0x1D
)

// Init is ESC @: clear the print buffer and reset every mode to the power-on default.
func Init() []byte { return []byte{ESC, '@'} }

// Bold is ESC E n: emphasized printing on or off.
func Bold(on bool) []byte { return []byte{ESC, 'E', b2b(on)} }

// Size is GS ! n: character width and height multipliers, 1–8 each.
func Size(w, h int) []byte {
	w = min(max(w, 1), 8)
	h = min(max(h, 1), 8)
	return []byte{GS, '!', byte((w-1)<<4 | (h - 1))}
}

// Alignment for Align.
type Alignment byte

// Alignments.
const (
	AlignLeft   Alignment = 0
	AlignCenter Alignment = 1
	AlignRight  Alignment = 2
)

// Align is ESC a n: justification of the lines that follow, raster and QR included.
func Align(a Alignment) []byte { return []byte{ESC, 'a', byte(a)} }

// Feed is ESC d n: print the buffer and feed n lines.
func Feed(n int) []byte { return []byte{ESC, 'd', byte(min(max(n, 0), 255))} }

// CodePage is ESC t n: the character code table for bytes 0x80–0xFF outside Chinese mode.
func CodePage(n byte) []byte { return []byte{ESC, 't', n} }

// ChineseOn is FS &: Chinese character mode, in which a byte 0x81–0xFE starts a
// double-byte GB18030 (GB2312/GBK) character.
func ChineseOn() []byte { return []byte{FS, '&'} }

// ChineseOff is FS .: leave Chinese character mode; bytes 0x80–0xFF are read through the
// code page.
func ChineseOff() []byte { return []byte{FS, '.'} }

// Cut is GS V 66 n: feed n lines, then cut (partial when partial is true, which leaves a
// hinge, else full).
func Cut(partial bool, feed int) []byte {
	m := byte(65)
	if partial {
		m = 66
	}
	return []byte{GS, 'V', m, byte(min(max(feed, 0), 255))}
}

// Drawer is ESC p m t1 t2: a pulse on drawer kick-out connector pin 2 (m = 0), on for
// 2·t1 ms and off for 2·t2 ms.
func Drawer() []byte { return []byte{ESC, 'p', 0, 50, 250} }

// StatusQuery is DLE EOT n, the real-time status request: n = 1 printer, 2 offline cause,
// 3 error cause, 4 roll paper sensor. The printer answers one byte (see DecodeStatus).
func StatusQuery(n byte) []byte { return []byte{DLE, EOT, n} }

// QR error-correction levels for GS ( k, function 169.
const (
	qrECL = 48 + iota
	qrECM
	qrECQ
	qrECH
)

// NativeQR is the GS ( k sequence that prints data as a QR code with the printer's own
// encoder: model 2 (function 165), module size in dots (function 167, 1–16), error
// correction level (function 169), store the data (function 180), print it (function 181).
// The printer encodes data as it is, in byte mode without an ECI header, so the driver
// uses it for ASCII payloads only. data must be 1–7089 bytes.
func NativeQR(data []byte, module int, level qr.Level) []byte {
	ec := byte(qrECM)
	switch level {
	case qr.LevelL:
		ec = qrECL
	case qr.LevelQ:
		ec = qrECQ
	case qr.LevelH:
		ec = qrECH
	}
	module = min(max(module, 1), 16)
	n := len(data) + 3
	out := make([]byte, 0, 8+5+8+5+len(data)+8)
	out = append(out, GS, '(', 'k', 4, 0, 49, 65, 50, 0) // model 2
	out = append(out, GS, '(', 'k', 3, 0, 49, 67, byte(module))
	out = append(out, GS, '(', 'k', 3, 0, 49, 69, ec)
	out = append(out, GS, '(', 'k', byte(n), byte(n>>8), 49, 80, 48)
	out = append(out, data...)
	out = append(out, GS, '(', 'k', 3, 0, 49, 81, 48)
	return out
}

// RasterBands is GS v 0 for an image, split into bands of at most rows rows each (one
// command per band), because many printers have a small receive buffer and some limit the
// height of one raster command. Each band is GS v 0 0 xL xH yL yH followed by
// widthBytes·yL bytes, a 1 bit printing a dot, the most significant bit leftmost.
func RasterBands(r qr.Raster, rows int) []byte {
	if rows <= 0 {
		rows = r.Height
	}
	var out []byte
	for y := 0; y < r.Height; y += rows {
		h := min(rows, r.Height-y)
		out = append(out, GS, 'v', '0', 0, byte(r.WidthBytes), byte(r.WidthBytes>>8), byte(h), byte(h>>8))
		out = append(out, r.Data[y*r.WidthBytes:(y+h)*r.WidthBytes]...)
	}
	return out
}

func b2b(on bool) byte {
	if on {
		return 1
	}
	return 0
}
