package escpos

import (
	"bytes"
	"fmt"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/qr"
)

// QRMode chooses how a receipt's QR code is sent.
type QRMode int

// QR modes.
const (
	// QRAuto prints natively (GS ( k) when the profile can and the payload is ASCII, else
	// as a raster image. The printer's own encoder writes no ECI header, and a scanner that
	// guesses the character set of UTF-8 bytes can read Chinese text wrongly, so non-ASCII
	// payloads always go as a raster built by package qr (Byte mode with ECI 26).
	QRAuto QRMode = iota
	QRNative
	QRRaster
)

// EncodeOptions tunes EncodeReceipt; the zero value is what the driver uses.
type EncodeOptions struct {
	QR QRMode
	// MaxModuleDots caps the size of one QR module in dots (default 4: 0.5 mm at 203 dpi,
	// which phones read at arm's length; bigger modules cost raster bytes, quadratically).
	MaxModuleDots int
	// NoCut leaves out the feed and cut at the end (for tests and for printing several
	// receipts as one job).
	NoCut bool
}

// EncodeReceipt lays the receipt out for the profile and encodes it as one ESC/POS job:
// ESC @, the character mode, the lines, the QR code, then feed and cut as the profile's
// cutter allows. It refuses a QR the profile cannot print with an error wrapping
// posagent.ErrUnsupported, and a QR payload too long for a QR code with one wrapping
// posagent.ErrInvalidInput.
func EncodeReceipt(rc *posagent.Receipt, p *Profile, opts EncodeOptions) ([]byte, error) {
	lines, err := Layout(rc, p)
	if err != nil {
		return nil, err
	}
	return EncodeLines(lines, p, opts)
}

// EncodeLines encodes laid-out lines as one job (see EncodeReceipt).
func EncodeLines(lines []Line, p *Profile, opts EncodeOptions) ([]byte, error) {
	cs := newCharset(p)
	var b bytes.Buffer
	b.Write(Init())
	if p.Chinese {
		b.Write(ChineseOn())
	} else {
		b.Write(ChineseOff())
		b.Write(CodePage(codePages[p.CodePage].n))
	}
	align, bold, tall := AlignLeft, false, false
	for _, ln := range lines {
		if ln.Align != align {
			b.Write(Align(ln.Align))
			align = ln.Align
		}
		if ln.QR != "" {
			if err := encodeQR(&b, ln.QR, p, opts); err != nil {
				return nil, err
			}
			continue
		}
		if ln.Bold != bold {
			b.Write(Bold(ln.Bold))
			bold = ln.Bold
		}
		if ln.Tall != tall {
			if ln.Tall {
				b.Write(Size(1, 2))
			} else {
				b.Write(Size(1, 1))
			}
			tall = ln.Tall
		}
		for _, g := range cs.glyphs(ln.Text) {
			b.Write(g.b)
		}
		b.WriteByte(LF)
	}
	if bold {
		b.Write(Bold(false))
	}
	if tall {
		b.Write(Size(1, 1))
	}
	if align != AlignLeft {
		b.Write(Align(AlignLeft))
	}
	if !opts.NoCut {
		if p.Cutter == "none" {
			b.Write(Feed(p.FeedLines))
		} else {
			b.Write(Cut(p.Cutter == "partial", p.FeedLines))
		}
	}
	return b.Bytes(), nil
}

// encodeQR writes the QR code: natively or as raster bands, with the module size the
// largest that fits the paper (quiet zone included), capped at MaxModuleDots.
func encodeQR(b *bytes.Buffer, text string, p *Profile, opts EncodeOptions) error {
	code, err := qr.Encode(text, qr.EncodeOptions{})
	if err != nil {
		return fmt.Errorf("receipt qr: %w", err)
	}
	maxMod := opts.MaxModuleDots
	if maxMod <= 0 {
		maxMod = 4
	}
	module := min(p.WidthDots/(code.Size()+2*qr.QuietZone), maxMod)
	if module < 1 {
		return posagent.Invalidf("receipt qr: %d modules do not fit %d dots", code.Size()+2*qr.QuietZone, p.WidthDots)
	}
	native := p.NativeQR && !code.ECI
	switch opts.QR {
	case QRNative:
		if !p.NativeQR {
			return &posagent.Error{Kind: posagent.ErrUnsupported, Msg: fmt.Sprintf("printer profile %s has no native QR", p.Name)}
		}
		native = true
	case QRRaster:
		native = false
	}
	if native {
		b.Write(NativeQR([]byte(text), module, code.Level))
		b.WriteByte(LF)
		return nil
	}
	if !p.Raster {
		return &posagent.Error{Kind: posagent.ErrUnsupported, Msg: fmt.Sprintf("printer profile %s cannot print this QR: no raster and the payload is not ASCII", p.Name)}
	}
	b.Write(RasterBands(code.Raster(module), p.RasterBandRows))
	return nil
}
