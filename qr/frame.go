package qr

import (
	"fmt"
	"image"
	"io"
	"math"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/posagent/posagent"
)

// FrameDecoder decodes the frames of a video stream, where the next frame is another
// chance and the time per frame matters more than reading every frame. Each frame gets
// the region of the last code first (a customer holds the phone still), then the cheap
// whole-frame attempt, then PerFrame of DecodeImage's other attempts, taking turns from
// frame to frame, so that a frame without a code costs a bounded fraction of what
// DecodeImage spends on it while a hard frame still meets every attempt within a few
// frames. A frame whose modules look small (a phone held far away) spends the first of
// its PerFrame on the strong sharpening that reads most of those. The zero value is ready to use; a FrameDecoder is not safe for concurrent use.
type FrameDecoder struct {
	// PerFrame is how many of the other attempts each frame gets; 0 means 2, a negative
	// value none.
	PerFrame int

	last image.Rectangle // where the last code was, in frame pixels
	turn int             // the next of the other attempts
}

// Frame is what FrameDecoder.Decode read.
type Frame struct {
	Text   string          // the code's text; it may be a payment credential: never log it
	Bounds image.Rectangle // where the code's finder patterns are, in the frame's pixels
}

// Decode reads the QR code in one frame. It returns an error wrapping ErrNoCode when it
// reads nothing and one wrapping posagent.ErrInvalidInput for a nil frame or one larger
// than MaxImagePixels. It never panics.
func (d *FrameDecoder) Decode(img image.Image) (f Frame, err error) {
	if img == nil {
		return Frame{}, posagent.Invalidf("decode frame: nil image")
	}
	b := img.Bounds()
	if b.Empty() {
		return Frame{}, fmt.Errorf("decode frame: empty image: %w", ErrNoCode)
	}
	if err := checkSize(b.Dx(), b.Dy()); err != nil {
		return Frame{}, fmt.Errorf("decode frame: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			f, err = Frame{}, fmt.Errorf("decode frame: internal error: %v", r)
		}
	}()
	f, ok := d.decodeGray(toGray(img))
	if !ok {
		d.last = image.Rectangle{}
		return Frame{}, fmt.Errorf("decode frame: %w", ErrNoCode)
	}
	f.Bounds = f.Bounds.Add(b.Min)
	d.last = f.Bounds.Sub(b.Min)
	return f, nil
}

func (d *FrameDecoder) decodeGray(full *gray) (Frame, bool) {
	hints := map[gozxing.DecodeHintType]interface{}{
		gozxing.DecodeHintType_TRY_HARDER:    true,
		gozxing.DecodeHintType_CHARACTER_SET: "UTF-8",
	}
	reader := qrcode.NewQRCodeReader()
	// The region of the last code, with a margin for the hand's movement and the quiet
	// zone: a small image, cheap to binarize and search.
	if !d.last.Empty() {
		r := d.last
		m := max(r.Dx(), r.Dy())/2 + 16
		r = image.Rect(r.Min.X-m, r.Min.Y-m, r.Max.X+m, r.Max.Y+m).Intersect(image.Rect(0, 0, full.w, full.h))
		if r.Dx() < full.w*3/4 || r.Dy() < full.h*3/4 {
			crop := full.crop(r)
			for _, global := range []bool{false, true} {
				if text, at, ok := tryDecodeAt(reader, crop, global, hints); ok {
					return Frame{Text: text, Bounds: pointsBounds(at, 1).Add(r.Min)}, true
				}
			}
		}
	}
	v := &variants{full: full, base: full, cache: map[string]*gray{}}
	if side := max(full.w, full.h); side > workSide {
		v.base = full.downscaled((side + workSide - 1) / workSide)
	}
	try := func(a attempt) (Frame, bool) {
		g := v.get(a.variant)
		if g == nil {
			return Frame{}, false
		}
		text, at, ok := tryDecodeAt(reader, g, a.global, hints)
		if !ok {
			return Frame{}, false
		}
		return Frame{Text: text, Bounds: pointsBounds(at, float64(g.w)/float64(full.w))}, true
	}
	if f, ok := try(attempts[0]); ok {
		return f, true
	}
	n := d.PerFrame
	if n == 0 {
		n = 2
	}
	rest := frameAttempts
	if n > 0 && moduleEstimate(v.base) == smallModule {
		// Small modules (a phone held far away): the strong sharpening that reads most
		// of them is this frame's first other attempt, not one turn in many.
		n--
		if f, ok := try(smallAttempts[1]); ok {
			return f, true
		}
	}
	for tried := 0; n > 0 && tried < len(rest); tried++ {
		a := rest[d.turn%len(rest)]
		d.turn++
		if v.get(a.variant) == nil {
			continue // does not apply to this frame size; does not count
		}
		n--
		if f, ok := try(a); ok {
			return f, true
		}
	}
	return Frame{}, false
}

// frameAttempts are the attempts after the first that FrameDecoder takes turns with:
// DecodeImage's, without the threefold upscale, which costs a 640×480 frame more than
// a tenth of a second; the next frames are the better chance.
var frameAttempts = func() []attempt {
	var out []attempt
	for _, a := range attempts[1:] {
		if a.variant != "sharp4-up3" {
			out = append(out, a)
		}
	}
	return out
}()

// pointsBounds is the rectangle around the finder (and alignment) pattern centres pts of
// an image scale times the size of the frame, in frame pixels, grown by four modules'
// worth (a fifth of the span) to take in the whole code.
func pointsBounds(pts []gozxing.ResultPoint, scale float64) image.Rectangle {
	if len(pts) == 0 || scale <= 0 {
		return image.Rectangle{}
	}
	x0, y0, x1, y1 := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for _, p := range pts {
		x0, x1 = min(x0, p.GetX()), max(x1, p.GetX())
		y0, y1 = min(y0, p.GetY()), max(y1, p.GetY())
	}
	m := max(x1-x0, y1-y0) / 5
	return image.Rect(int((x0-m)/scale), int((y0-m)/scale), int(math.Ceil((x1+m)/scale)), int(math.Ceil((y1+m)/scale)))
}

// crop copies the part r of g (r within g).
func (g *gray) crop(r image.Rectangle) *gray {
	out := newGray(r.Dx(), r.Dy())
	for y := 0; y < out.h; y++ {
		copy(out.pix[y*out.w:(y+1)*out.w], g.pix[(r.Min.Y+y)*g.w+r.Min.X:])
	}
	return out
}

// ReadImage reads a PNG, JPEG or GIF (first frame) image, recognised by its content, with
// DecodeFile's checks: an image that is not one of those formats, is corrupt or is larger
// than MaxImagePixels gives an error wrapping posagent.ErrInvalidInput, found before its
// pixels are decoded.
func ReadImage(r io.ReadSeeker) (image.Image, error) {
	return readImage(r)
}
