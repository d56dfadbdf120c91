package qr

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/posagent/posagent"
)

// ErrNoCode means that no QR code could be read from the image.
var ErrNoCode = errors.New("no QR code found")

// MaxImagePixels is the largest image DecodeImage and DecodeFile accept, in pixels
// (40 megapixels); bigger images are refused before any work is done.
const MaxImagePixels = 40_000_000

// DecodeImage reads the QR code in img and returns its text.
//
// It tries, cheapest first, until one attempt reads a code: the image as it is with a
// local (hybrid) and a global threshold; light-on-dark (inverted) codes; contrast
// stretching for faded codes; a median filter for noisy frames; upscaling for codes with
// one or two pixels per module. Images larger than 1280 pixels on a side are first tried
// scaled down, then at full size. The attempts are a fixed, short list, so the time spent
// is bounded by the image size.
//
// Byte-mode text is read as UTF-8 unless the code carries an ECI designator naming another
// character set. An image in which no attempt reads a code gives an error wrapping
// ErrNoCode; nil or oversized images (see MaxImagePixels) an error wrapping
// posagent.ErrInvalidInput. DecodeImage does not panic, whatever the image.
func DecodeImage(img image.Image) (string, error) {
	text, _, err := decodeImage(img)
	if err != nil {
		return "", fmt.Errorf("decode qr: %w", err)
	}
	return text, nil
}

// DecodeFile reads the QR code in the PNG, JPEG or GIF (first frame) image file at path,
// recognised by its content rather than its name, as DecodeImage does. Errors name the
// file; a file that is not one of those formats, is corrupt or is too large gives an
// error wrapping posagent.ErrInvalidInput.
func DecodeFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("decode qr: %w", err) // *fs.PathError names the file
	}
	defer f.Close()
	img, err := readImage(f)
	if err != nil {
		return "", fmt.Errorf("decode qr: %s: %w", path, err)
	}
	text, _, err := decodeImage(img)
	if err != nil {
		return "", fmt.Errorf("decode qr: %s: %w", path, err)
	}
	return text, nil
}

// readImage sniffs the format, checks the dimensions and only then decodes the pixels,
// so that a small file announcing a huge image costs nothing.
func readImage(r io.ReadSeeker) (image.Image, error) {
	var magic [8]byte
	n, _ := io.ReadFull(r, magic[:])
	var decodeConfig func(io.Reader) (image.Config, error)
	var decode func(io.Reader) (image.Image, error)
	var format string
	switch m := magic[:n]; {
	case bytes.HasPrefix(m, []byte("\x89PNG\r\n\x1a\n")):
		format, decodeConfig, decode = "PNG", png.DecodeConfig, png.Decode
	case bytes.HasPrefix(m, []byte("\xff\xd8\xff")):
		format, decodeConfig = "JPEG", jpeg.DecodeConfig
		decode = func(r io.Reader) (image.Image, error) { return jpeg.Decode(r) }
	case bytes.HasPrefix(m, []byte("GIF87a")), bytes.HasPrefix(m, []byte("GIF89a")):
		format, decodeConfig, decode = "GIF", gif.DecodeConfig, gif.Decode
	default:
		return nil, fmt.Errorf("not a PNG, JPEG or GIF image: %w", posagent.ErrInvalidInput)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("bad %s image: %w: %w", format, err, posagent.ErrInvalidInput)
	}
	if err := checkSize(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := decode(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("bad %s image: %w: %w", format, err, posagent.ErrInvalidInput)
	}
	return img, nil
}

func checkSize(w, h int) error {
	if int64(w)*int64(h) > MaxImagePixels {
		return fmt.Errorf("image is %d×%d pixels (%.1f megapixels), more than the %d this decoder accepts: %w",
			w, h, float64(w)*float64(h)/1e6, MaxImagePixels/1_000_000, posagent.ErrInvalidInput)
	}
	return nil
}

// decodeImage is DecodeImage without the error prefix; it also returns the name of the
// attempt that succeeded, for tests and benchmarks.
func decodeImage(img image.Image) (text, attempt string, err error) {
	if img == nil {
		return "", "", fmt.Errorf("nil image: %w", posagent.ErrInvalidInput)
	}
	b := img.Bounds()
	if b.Empty() {
		return "", "", fmt.Errorf("empty image: %w", ErrNoCode)
	}
	if err := checkSize(b.Dx(), b.Dy()); err != nil {
		return "", "", err
	}
	return decodeGray(toGray(img))
}

// Work sizes.
const (
	workSide    = 1280 // larger images are first tried scaled down to this
	upscaleSide = 1024 // images up to this are also tried scaled up ×2 (small modules)
)

// attempt is one way to look at the image: a pre-processed variant and a binarizer.
type attempt struct {
	name    string
	variant string // key in the variants table
	global  bool   // GlobalHistogramBinarizer instead of HybridBinarizer
}

// attempts, cheapest and most likely first. A variant that does not apply to an image
// (for example "full" when the image was not scaled down) is skipped.
var attempts = []attempt{
	{"hybrid", "base", false},
	{"global", "base", true},
	{"inverted", "inverted", false},
	{"stretched", "stretched", false},
	{"median", "median", false},
	{"up2", "up2", false},
	{"up2-median", "up2-median", false},
	{"up2-inverted", "up2-inverted", false},
	{"full", "full", false},
	{"full-global", "full", true},
}

// variants builds the pre-processed images on demand and keeps them for later attempts.
type variants struct {
	full, base *gray
	cache      map[string]*gray
}

// get returns the named variant, or nil when it does not apply.
func (v *variants) get(name string) *gray {
	if g, ok := v.cache[name]; ok {
		return g
	}
	var g *gray
	switch name {
	case "base":
		g = v.base
	case "full":
		if v.full != v.base {
			g = v.full
		}
	case "inverted":
		g = v.base.inverted()
	case "stretched":
		g = v.base.stretched()
	case "median":
		g = v.base.median3()
	case "up2":
		if max(v.base.w, v.base.h) <= upscaleSide {
			g = v.base.upscaled(2)
		}
	case "up2-median":
		if m := v.get("median"); m != nil && max(m.w, m.h) <= upscaleSide {
			g = m.upscaled(2)
		}
	case "up2-inverted":
		if u := v.get("up2"); u != nil {
			g = u.inverted()
		}
	case "highlight24":
		g = v.base.highlight(24)
	case "highlight48":
		g = v.base.highlight(48)
	case "highlight80":
		g = v.base.highlight(80)
	case "sharpened":
		g = v.base.sharpened(1.5, 1.5)
	case "sharpened2":
		g = v.base.sharpened(2.5, 2)
	case "blur1":
		g = v.base.blurred(1)
	case "up3":
		if max(v.base.w, v.base.h) <= upscaleSide {
			g = v.base.upscaled(3)
		}
	case "up2-sharpened":
		if u := v.get("up2"); u != nil {
			g = u.sharpened(2, 1.5)
		}
	case "inverted-median":
		g = v.get("median").inverted()
	case "median-median":
		g = v.get("median").median3()
	default:
		panic("qr: unknown image variant " + name)
	}
	v.cache[name] = g
	return g
}

func decodeGray(full *gray) (text, name string, err error) {
	v := &variants{full: full, base: full, cache: map[string]*gray{}}
	if side := max(full.w, full.h); side > workSide {
		v.base = full.downscaled((side + workSide - 1) / workSide)
	}
	hints := map[gozxing.DecodeHintType]interface{}{
		gozxing.DecodeHintType_TRY_HARDER:    true,
		gozxing.DecodeHintType_CHARACTER_SET: "UTF-8",
	}
	reader := qrcode.NewQRCodeReader()
	for _, a := range attempts {
		g := v.get(a.variant)
		if g == nil {
			continue
		}
		if text, ok := tryDecode(reader, g, a.global, hints); ok {
			return text, a.name, nil
		}
	}
	return "", "", ErrNoCode
}

// tryDecode runs one gozxing decode; a panic inside gozxing counts as a failure.
func tryDecode(reader gozxing.Reader, g *gray, global bool, hints map[gozxing.DecodeHintType]interface{}) (text string, ok bool) {
	defer func() {
		if recover() != nil {
			text, ok = "", false
		}
	}()
	src, err := gozxing.NewPlanarYUVLuminanceSource(g.pix, g.w, g.h, 0, 0, g.w, g.h, false)
	if err != nil {
		return "", false
	}
	var bin gozxing.Binarizer
	if global {
		bin = gozxing.NewGlobalHistgramBinarizer(src)
	} else {
		bin = gozxing.NewHybridBinarizer(src)
	}
	bmp, err := gozxing.NewBinaryBitmap(bin)
	if err != nil {
		return "", false
	}
	res, err := reader.Decode(bmp, hints)
	if err != nil {
		return "", false
	}
	return res.GetText(), true
}

// gray is an 8-bit luminance image, rows packed (stride = w), 0 black, 255 white.
type gray struct {
	w, h int
	pix  []byte
}

func newGray(w, h int) *gray { return &gray{w: w, h: h, pix: make([]byte, w*h)} }

// toGray converts img to luminance (Rec. 601 weights), compositing transparent pixels
// over white, with fast paths for the types the image decoders return.
func toGray(img image.Image) *gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	g := newGray(w, h)
	switch m := img.(type) {
	case *image.Gray:
		for y := 0; y < h; y++ {
			copy(g.pix[y*w:(y+1)*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.YCbCr:
		for y := 0; y < h; y++ {
			copy(g.pix[y*w:(y+1)*w], m.Y[m.YOffset(b.Min.X, b.Min.Y+y):])
		}
	case *image.RGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				bg := 255 - uint32(p[3]) // premultiplied: over white adds (1-α)·255
				g.pix[y*w+x] = lum8(uint32(p[0])+bg, uint32(p[1])+bg, uint32(p[2])+bg)
			}
		}
	case *image.NRGBA:
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				p := row[4*x : 4*x+4 : 4*x+4]
				a := uint32(p[3])
				g.pix[y*w+x] = lum8(overWhite(p[0], a), overWhite(p[1], a), overWhite(p[2], a))
			}
		}
	case *image.Paletted:
		var lut [256]uint8
		for i, c := range m.Palette {
			lut[i] = lum16(c.RGBA())
		}
		for y := 0; y < h; y++ {
			row := m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):]
			for x := 0; x < w; x++ {
				g.pix[y*w+x] = lut[row[x]]
			}
		}
	default:
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				g.pix[y*w+x] = lum16(img.At(b.Min.X+x, b.Min.Y+y).RGBA())
			}
		}
	}
	return g
}

// lum8 is the Rec. 601 luminance of 8-bit (possibly slightly over 255) channels.
func lum8(r, g, b uint32) uint8 {
	y := (19595*r + 38470*g + 7471*b + 1<<15) >> 16
	return uint8(min(y, 255))
}

// overWhite composites a non-premultiplied 8-bit channel c of opacity a over white.
func overWhite(c uint8, a uint32) uint32 { return (uint32(c)*a + 255*(255-a) + 127) / 255 }

// lum16 is lum8 for alpha-premultiplied 16-bit channels, composited over white.
func lum16(r, g, b, a uint32) uint8 {
	bg := 0xFFFF - a
	return lum8((r+bg)>>8, (g+bg)>>8, (b+bg)>>8)
}

func (g *gray) inverted() *gray {
	out := newGray(g.w, g.h)
	for i, v := range g.pix {
		out.pix[i] = 255 - v
	}
	return out
}

// stretched maps the 1st–99th percentile range of grey levels to 0–255, which gives a
// faded or washed-out code back the contrast the binarizers need.
func (g *gray) stretched() *gray {
	var hist [256]int
	for _, v := range g.pix {
		hist[v]++
	}
	cut := len(g.pix) / 100
	lo, hi := 0, 255
	for n := 0; lo < 255; lo++ {
		if n += hist[lo]; n > cut {
			break
		}
	}
	for n := 0; hi > 0; hi-- {
		if n += hist[hi]; n > cut {
			break
		}
	}
	if hi <= lo {
		return nil
	}
	var lut [256]uint8
	for i := range lut {
		lut[i] = uint8(min(max((i-lo)*255/(hi-lo), 0), 255))
	}
	out := newGray(g.w, g.h)
	for i, v := range g.pix {
		out.pix[i] = lut[v]
	}
	return out
}

// median3 is a 3×3 median filter: it removes salt-and-pepper noise and much of the
// sensor noise while keeping module edges. Border pixels are copied.
func (g *gray) median3() *gray {
	out := newGray(g.w, g.h)
	copy(out.pix, g.pix)
	var win [9]uint8
	for y := 1; y < g.h-1; y++ {
		for x := 1; x < g.w-1; x++ {
			i := y*g.w + x
			copy(win[0:3], g.pix[i-g.w-1:i-g.w+2])
			copy(win[3:6], g.pix[i-1:i+2])
			copy(win[6:9], g.pix[i+g.w-1:i+g.w+2])
			out.pix[i] = median9(&win)
		}
	}
	return out
}

// median9 returns the median of 9 values with a partial sorting network.
func median9(p *[9]uint8) uint8 {
	s := func(a, b int) {
		if p[a] > p[b] {
			p[a], p[b] = p[b], p[a]
		}
	}
	s(1, 2)
	s(4, 5)
	s(7, 8)
	s(0, 1)
	s(3, 4)
	s(6, 7)
	s(1, 2)
	s(4, 5)
	s(7, 8)
	s(0, 3)
	s(5, 8)
	s(4, 7)
	s(3, 6)
	s(1, 4)
	s(2, 5)
	s(4, 7)
	s(4, 2)
	s(6, 4)
	s(4, 2)
	return p[4]
}

// upscaled enlarges the image k times with bilinear interpolation, so that codes with one
// or two pixels per module get modules the finder-pattern search can measure.
func (g *gray) upscaled(k int) *gray {
	out := newGray(g.w*k, g.h*k)
	for y := 0; y < out.h; y++ {
		sy := (float32(y)+0.5)/float32(k) - 0.5
		y0 := int(sy)
		if sy < 0 {
			y0, sy = 0, 0
		}
		y1 := min(y0+1, g.h-1)
		fy := sy - float32(y0)
		r0, r1 := g.pix[y0*g.w:], g.pix[y1*g.w:]
		for x := 0; x < out.w; x++ {
			sx := (float32(x)+0.5)/float32(k) - 0.5
			x0 := int(sx)
			if sx < 0 {
				x0, sx = 0, 0
			}
			x1 := min(x0+1, g.w-1)
			fx := sx - float32(x0)
			top := float32(r0[x0])*(1-fx) + float32(r0[x1])*fx
			bot := float32(r1[x0])*(1-fx) + float32(r1[x1])*fx
			out.pix[y*out.w+x] = uint8(top*(1-fy) + bot*fy + 0.5)
		}
	}
	return out
}

// downscaled shrinks the image k times by averaging k×k blocks (partial blocks at the
// right and bottom edges are averaged over the pixels they have).
func (g *gray) downscaled(k int) *gray {
	out := newGray((g.w+k-1)/k, (g.h+k-1)/k)
	for oy := 0; oy < out.h; oy++ {
		for ox := 0; ox < out.w; ox++ {
			var sum, n int
			for y := oy * k; y < min((oy+1)*k, g.h); y++ {
				row := g.pix[y*g.w:]
				for x := ox * k; x < min((ox+1)*k, g.w); x++ {
					sum += int(row[x])
					n++
				}
			}
			out.pix[oy*out.w+ox] = uint8((sum + n/2) / n)
		}
	}
	return out
}

// highlight maps the d grey levels below the 99th percentile (the paper) to 0–255 and
// everything darker to black: a faded code on bright paper gets its contrast back, and a
// dark surrounding stops pulling the local thresholds down.
func (g *gray) highlight(d int) *gray {
	var hist [256]int
	for _, v := range g.pix {
		hist[v]++
	}
	cut := len(g.pix) / 100
	hi := 255
	for n := 0; hi > 0; hi-- {
		if n += hist[hi]; n > cut {
			break
		}
	}
	lo := hi - d
	if lo < 0 {
		return nil
	}
	var lut [256]uint8
	for i := range lut {
		lut[i] = uint8(min(max((i-lo)*255/d, 0), 255))
	}
	out := newGray(g.w, g.h)
	for i, v := range g.pix {
		out.pix[i] = lut[v]
	}
	return out
}

// blurred applies a separable gaussian blur of the given sigma.
func (g *gray) blurred(sigma float64) *gray {
	r := int(math.Ceil(2.5 * sigma))
	k := make([]int32, 2*r+1)
	var sum int32
	for i := -r; i <= r; i++ {
		k[i+r] = int32(math.Round(1024 * math.Exp(-float64(i*i)/(2*sigma*sigma))))
		sum += k[i+r]
	}
	tmp := make([]int32, g.w*g.h)
	for y := 0; y < g.h; y++ {
		row := g.pix[y*g.w : (y+1)*g.w]
		for x := 0; x < g.w; x++ {
			var acc int32
			for i := -r; i <= r; i++ {
				acc += k[i+r] * int32(row[min(max(x+i, 0), g.w-1)])
			}
			tmp[y*g.w+x] = acc
		}
	}
	out := newGray(g.w, g.h)
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			var acc int64
			for i := -r; i <= r; i++ {
				acc += int64(k[i+r]) * int64(tmp[min(max(y+i, 0), g.h-1)*g.w+x])
			}
			out.pix[y*g.w+x] = uint8(acc / (int64(sum) * int64(sum)))
		}
	}
	return out
}

// sharpened is an unsharp mask: it restores the module edges of a slightly out-of-focus
// code.
func (g *gray) sharpened(sigma, amount float64) *gray {
	b := g.blurred(sigma)
	out := newGray(g.w, g.h)
	a := int(amount * 256)
	for i, v := range g.pix {
		d := (int(v) - int(b.pix[i])) * a / 256
		out.pix[i] = uint8(min(max(int(v)+d, 0), 255))
	}
	return out
}
