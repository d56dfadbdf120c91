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
	"slices"
	"sort"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	qrdecoder "github.com/makiuchi-d/gozxing/qrcode/decoder"
	"github.com/makiuchi-d/gozxing/qrcode/detector"

	"github.com/posagent/posagent"
)

// ErrNoCode means that no QR code could be read from the image.
var ErrNoCode = errors.New("no QR code found")

// MaxImagePixels is the largest image DecodeImage and DecodeFile accept, in pixels
// (40 megapixels); bigger images are refused before any work is done.
const MaxImagePixels = 40_000_000

// DecodeImage reads the QR code in img and returns its text.
//
// It makes a fixed list of attempts, cheapest first, and stops at the first that reads a
// code: the image as it is, with a local (hybrid) then a global threshold; a median filter
// for noisy frames; inverted, for light-on-dark codes; sharpened, for out-of-focus frames;
// contrast stretches for faded codes; and, for frames up to 1024 pixels, scaled up 2 or 3
// times for codes with one or two pixels per module. Images larger than 1280 pixels on a side are scaled down for these attempts, then
// tried once more at full size. The work is thus bounded by the image size: a 640×480 frame
// without a code costs about 0.1 s of CPU on a desktop core, one with a clean code a few
// milliseconds.
//
// Byte-mode text is read as UTF-8 unless the code carries an ECI designator naming another
// character set. An image in which no attempt reads a code gives an error wrapping
// ErrNoCode; a nil image, or one larger than MaxImagePixels, an error wrapping
// posagent.ErrInvalidInput. DecodeImage never panics and is safe for concurrent use.
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
		return nil, posagent.Invalidf("not a PNG, JPEG or GIF image")
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(bufio.NewReader(r))
	if err != nil {
		return nil, posagent.Invalidf("bad %s image: %v", format, err)
	}
	if err := checkSize(cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := decode(bufio.NewReader(r))
	if err != nil {
		return nil, posagent.Invalidf("bad %s image: %v", format, err)
	}
	return img, nil
}

func checkSize(w, h int) error {
	if int64(w)*int64(h) > MaxImagePixels {
		return posagent.Invalidf("image is %d×%d pixels (%.1f megapixels), more than the %d this decoder accepts",
			w, h, float64(w)*float64(h)/1e6, MaxImagePixels/1_000_000)
	}
	return nil
}

// decodeImage is DecodeImage without the error prefix; it also returns the name of the
// attempt that succeeded, for tests and benchmarks.
func decodeImage(img image.Image) (text, attempt string, err error) {
	if img == nil {
		return "", "", posagent.Invalidf("nil image")
	}
	b := img.Bounds()
	if b.Empty() {
		return "", "", fmt.Errorf("empty image: %w", ErrNoCode)
	}
	if err := checkSize(b.Dx(), b.Dy()); err != nil {
		return "", "", err
	}
	defer func() {
		// gozxing's panics are caught attempt by attempt (tryDecode); this is the last
		// line of defence for the terminal, should pre-processing ever panic.
		if r := recover(); r != nil {
			text, attempt, err = "", "", fmt.Errorf("internal error: %v", r)
		}
	}()
	return decodeGray(toGray(img))
}

// Work sizes.
const (
	workSide    = 1280 // larger images are first tried scaled down to this
	upscaleSide = 1024 // images up to this are also tried scaled up (small modules)
)

// attempt is one way to look at the image: a pre-processed variant and a binarizer.
type attempt struct {
	variant string // key for variants.get
	global  bool   // GlobalHistogramBinarizer instead of HybridBinarizer
}

func (a attempt) String() string {
	if a.global {
		return a.variant + "/global"
	}
	return a.variant
}

// attempts, in order. The order is measured, not guessed: TestAttemptOrder runs every
// candidate attempt on its own over the distortion corpus (internal/distort: every class
// and strength), then orders them greedily by hit rate per millisecond, each next attempt
// being the one that reads the most of the frames still unread per millisecond it spends
// on them; decodeGray stops at the first hit. Attempts that read nothing new in the
// corpus but are the usual remedies for what it does not hold (uneven light over a big
// code, a code of one pixel per module) come last, and big images are tried at full size
// at the very end. Figures (228 frames, 640×480, one core) in the comments: frames read
// alone / new frames read in this position.
//
// Frames whose modules look 3 pixels wide (moduleEstimate) take smallAttempts first.
var attempts = []attempt{
	{"base", true},           // 124/124: global threshold; a sharp, evenly lit code
	{"inverted", true},       // 13/13: light modules on dark (phone screens in dark mode)
	{"stretched", false},     // 152/28: faded, low contrast, uneven light (local threshold)
	{"highlight", false},     // 86/6: faded code on bright paper, dark surroundings
	{"median", false},        // 157/22: sensor noise, salt-and-pepper
	{"sharpened", false},     // 152/8: out of focus
	{"inverted", false},      // 13/2: light on dark, uneven light
	{"up2-inverted", true},   // 18/3: light on dark, small or noisy
	{"up2-median", false},    // 155/5: small and noisy
	{"sharp4-up2", false},    // 142/5: small, blurred and tilted: a phone held far away
	{"sharp4", false},        // 143/1: blurred small modules
	{"base", false},          // 145/0: local threshold on the frame as it is
	{"up2", false},           // 150/0: one pixel per module
	{"up2-sharpened", false}, // 154/0: 1.5 pixels per module, blurred
	{"sharp8", false},        // far and blurred: a stronger mask (reads 3 of 40 "far" frames the others miss)
	{"sharp4-up3", false},    // far, blurred and tilted (2 of 40)
	{"full", false},          // big frames: the code was too small once scaled down
	{"full", true},           //
}

// smallAttempts come first, before the rest of attempts in their order, when a frame's
// modules look smallModule pixels wide: a phone held far from the camera (handheld/far:
// 2.5 pixels per module, tilted, blurred), which the attempts before sharp4-up2 never read
// but spend most of the time on. The order is measured on the handheld/far frames alone
// (20 seeds, each attempt on its own; frames read alone / new frames in this position).
var smallAttempts = []attempt{
	{"base", true},        // 0/0: costs 2 ms, and any sharp code is read here
	{"sharp8", false},     // 11/11
	{"stretched", false},  // 0/0: 12 ms, but it reads the 3-pixel modules of heavy JPEG (jpeg/q7)
	{"sharp4-up2", false}, // 13/6: sharp4 (9/0 after these) shares sharp8's blurred copy
}

// smallModule is the moduleEstimate for which smallAttempts come first.
const smallModule = 3

// variants builds the pre-processed images on demand and keeps them for later attempts.
type variants struct {
	full, base *gray
	cache      map[string]*gray
}

// get returns the named variant, or nil when it does not apply to this image.
func (v *variants) get(name string) *gray {
	if g, ok := v.cache[name]; ok {
		return g
	}
	var g *gray
	// Upscaling applies to small frames only; a big image scaled down is tried at full
	// size instead.
	small := v.full == v.base && max(v.base.w, v.base.h) <= upscaleSide
	switch name {
	case "base":
		g = v.base
	case "full":
		if v.full != v.base {
			g = v.full
		}
	case "inverted":
		g = v.base.inverted()
	case "median":
		g = v.base.median3()
	case "blurred":
		g = v.base.blurred()
	case "sharpened":
		g = v.base.unsharp(v.get("blurred"), 6)
	case "sharp4":
		g = v.base.unsharp(v.get("blurred"), 16)
	case "sharp8":
		g = v.base.unsharp(v.get("blurred"), 32)
	case "sharp4-up3":
		if small {
			g = v.get("sharp4").upscaled(3)
		}
	case "sharp4-up2":
		if small {
			g = v.get("sharp4").upscaled(2)
		}
	case "highlight":
		g = v.base.highlight(24)
	case "stretched":
		g = v.base.stretched()
	case "up2", "up3":
		if small {
			g = v.base.upscaled(int(name[2] - '0'))
		}
	case "up2-sharpened":
		if u := v.get("up2"); u != nil {
			g = u.sharpened()
		}
	case "up2-median":
		if small {
			g = v.get("median").upscaled(2)
		}
	case "up2-inverted":
		if u := v.get("up2"); u != nil {
			g = u.inverted()
		}
	default:
		panic("qr: unknown image variant " + name)
	}
	v.cache[name] = g
	return g
}

// decodeGray makes the attempts on a luminance image; it returns the text and the name of
// the attempt that read it.
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
	for _, a := range attemptOrder(v.base) {
		g := v.get(a.variant)
		if g == nil {
			continue
		}
		if text, ok := tryDecode(reader, g, a.global, hints); ok {
			return text, a.String(), nil
		}
	}
	return "", "", ErrNoCode
}

// attemptOrder returns the attempts for the image g: attempts, or smallAttempts followed by
// the rest of attempts when g's modules look small.
func attemptOrder(g *gray) []attempt {
	if moduleEstimate(g) != smallModule {
		return attempts
	}
	order := append(make([]attempt, 0, len(attempts)), smallAttempts...)
	for _, a := range attempts {
		if !slices.Contains(smallAttempts, a) {
			order = append(order, a)
		}
	}
	return order
}

// tryDecode runs one gozxing decode and, when it fails, decodeSweep on the same
// binarized image; a panic inside gozxing counts as a failure.
func tryDecode(reader gozxing.Reader, g *gray, global bool, hints map[gozxing.DecodeHintType]interface{}) (text string, ok bool) {
	text, _, ok = tryDecodeAt(reader, g, global, hints)
	return text, ok
}

// tryDecodeAt is tryDecode that also returns where the code's finder patterns are, in g's
// pixels.
func tryDecodeAt(reader gozxing.Reader, g *gray, global bool, hints map[gozxing.DecodeHintType]interface{}) (text string, at []gozxing.ResultPoint, ok bool) {
	defer func() {
		if recover() != nil {
			text, at, ok = "", nil, false
		}
	}()
	src, err := gozxing.NewPlanarYUVLuminanceSource(g.pix, g.w, g.h, 0, 0, g.w, g.h, false)
	if err != nil {
		return "", nil, false
	}
	var bin gozxing.Binarizer
	if global {
		bin = gozxing.NewGlobalHistgramBinarizer(src)
	} else {
		bin = gozxing.NewHybridBinarizer(src)
	}
	bmp, err := gozxing.NewBinaryBitmap(bin)
	if err != nil {
		return "", nil, false
	}
	if res, err := reader.Decode(bmp, hints); err == nil {
		return res.GetText(), res.GetResultPoints(), true
	}
	bits, err := bmp.GetBlackMatrix() // cached by the failed attempt
	if err != nil {
		return "", nil, false
	}
	return decodeSweep(bits, hints)
}

// decodeSweep is a second opinion on where the code is, for when ZXing's detector finds
// the three finder patterns but misjudges the code's size, or picks the wrong three.
//
// ZXing derives the number of modules from a module size measured on black and white
// runs; with small modules, blur and noise that measure is a few percent off, the version
// comes out wrong by one or two, and the grid misses the modules ("dimension = 55",
// "versionNumber = 63"). decodeSweep keeps the finder patterns and tries the few sizes
// (versions) closest to the estimate, each with the module size it implies to find the
// alignment pattern; the decoder's Reed-Solomon check rejects the wrong ones.
//
// ZXing also keeps, of all the finder-pattern candidates it found, the three closest to an
// isosceles right triangle. In a sharp, large image of a code with many modules the data
// area can hold a 1:1:3:1:1 run that passes every check, and a false candidate can make a
// better triangle than the true corner (a clean version 11–14 code at 6 pixels per module
// fails this way, whatever its quiet zone). decodeSweep therefore also tries the next-best
// triples of candidates.
func decodeSweep(bits *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) (string, []gozxing.ResultPoint, bool) {
	const maxTriples = 4 // triples of finder-pattern candidates tried, best first
	cands := finderCandidates(bits, hints)
	if len(cands) < 3 {
		return "", nil, false
	}
	for _, t := range finderTriples(cands, maxTriples) {
		if text, ok := decodeTriple(bits, t, hints); ok {
			return text, []gozxing.ResultPoint{t[0], t[1], t[2]}, true
		}
	}
	return "", nil, false
}

// finderCandidates returns the finder-pattern candidates ZXing's finder sees scanning the
// image from the top and, rotated, from the bottom. The finder stops once it has three
// well-confirmed candidates, so a false one in the data area above the bottom-left corner
// hides the true corner from a top-down scan; the bottom-up scan meets the corner first.
func finderCandidates(bits *gozxing.BitMatrix, hints map[gozxing.DecodeHintType]interface{}) []*detector.FinderPattern {
	var out []*detector.FinderPattern
	add := func(p *detector.FinderPattern) {
		for _, q := range out {
			if q.AboutEquals(p.GetEstimatedModuleSize(), p.GetY(), p.GetX()) {
				return
			}
		}
		out = append(out, p)
	}
	f := detector.NewFinderPatternFinder(bits, nil)
	f.Find(hints) // errors leave fewer candidates
	for _, p := range f.GetPossibleCenters() {
		add(p)
	}
	if len(out) < 3 {
		// The finder stops early only once it has three candidates; it saw every row,
		// and the other direction would find the same.
		return out
	}
	bits.Rotate180()
	defer bits.Rotate180()
	w, h := float64(bits.GetWidth()), float64(bits.GetHeight())
	f = detector.NewFinderPatternFinder(bits, nil)
	f.Find(hints)
	for _, p := range f.GetPossibleCenters() {
		add(detector.NewFinderPattern(w-p.GetX(), h-p.GetY(), p.GetEstimatedModuleSize(), p.GetCount()))
	}
	return out
}

// finderTriples returns up to n triples of candidates (top-left, top-right, bottom-left)
// with similar module sizes, the closest to an isosceles right triangle first, as ZXing
// ranks them.
func finderTriples(c []*detector.FinderPattern, n int) [][3]gozxing.ResultPoint {
	type triple struct {
		p [3]gozxing.ResultPoint
		d float64
	}
	const maxCandidates = 12 // the most confirmed; more is noise
	if len(c) > maxCandidates {
		c = append([]*detector.FinderPattern(nil), c...)
		sort.SliceStable(c, func(i, j int) bool { return c[i].GetCount() > c[j].GetCount() })
		c = c[:maxCandidates]
	}
	var all []triple
	for i := 0; i < len(c); i++ {
		for j := i + 1; j < len(c); j++ {
			for k := j + 1; k < len(c); k++ {
				lo := min(c[i].GetEstimatedModuleSize(), c[j].GetEstimatedModuleSize(), c[k].GetEstimatedModuleSize())
				hi := max(c[i].GetEstimatedModuleSize(), c[j].GetEstimatedModuleSize(), c[k].GetEstimatedModuleSize())
				if hi > lo*1.4 {
					continue
				}
				s := []float64{sq(c[i], c[j]), sq(c[j], c[k]), sq(c[i], c[k])}
				sort.Float64s(s)
				a, b, h := s[0], s[1], s[2]
				if h == 0 {
					continue
				}
				bl, tl, tr := gozxing.ResultPoint_OrderBestPatterns(c[i], c[j], c[k])
				all = append(all, triple{[3]gozxing.ResultPoint{tl, tr, bl}, (math.Abs(h-2*b) + math.Abs(h-2*a)) / h})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].d < all[j].d })
	out := make([][3]gozxing.ResultPoint, 0, n)
	for _, t := range all {
		if len(out) == n || t.d > 0.5 {
			break
		}
		out = append(out, t.p)
	}
	return out
}

func sq(a, b gozxing.ResultPoint) float64 {
	x, y := a.GetX()-b.GetX(), a.GetY()-b.GetY()
	return x*x + y*y
}

// decodeTriple reads the code whose finder patterns are t (top-left, top-right,
// bottom-left), trying the few versions closest to what their distance and the module
// size suggest.
func decodeTriple(bits *gozxing.BitMatrix, t [3]gozxing.ResultPoint, hints map[gozxing.DecodeHintType]interface{}) (string, bool) {
	const tries = 5 // versions tried, closest to the estimate first
	tl, tr, bl := t[0], t[1], t[2]
	fp := func(p gozxing.ResultPoint) float64 {
		if f, ok := p.(*detector.FinderPattern); ok {
			return f.GetEstimatedModuleSize()
		}
		return 0
	}
	between := (gozxing.ResultPoint_Distance(tl, tr) + gozxing.ResultPoint_Distance(tl, bl)) / 2
	// The finder patterns measure modules along image rows: a code turned by θ shows
	// runs 1/max(|cos θ|, |sin θ|) times longer than its modules.
	theta := math.Atan2(tr.GetY()-tl.GetY(), tr.GetX()-tl.GetX())
	module := (fp(tl) + fp(tr) + fp(bl)) / 3 * max(math.Abs(math.Cos(theta)), math.Abs(math.Sin(theta)))
	if module < 1 || between < 7*module {
		return "", false
	}
	estimate := between/module + 7 // modules across
	versions := make([]int, 0, 40)
	for v := 1; v <= 40; v++ {
		versions = append(versions, v)
	}
	dist := func(v int) float64 { return math.Abs(float64(17+4*v) - estimate) }
	sort.SliceStable(versions, func(i, j int) bool { return dist(versions[i]) < dist(versions[j]) })

	dec := qrdecoder.NewDecoder()
	for _, v := range versions[:tries] {
		dim := 17 + 4*v
		moduleAt := between / float64(dim-7)
		var ap *detector.AlignmentPattern
		if v >= 2 {
			ap = findAlignment(bits, tl, tr, bl, dim, moduleAt)
		}
		for _, a := range []*detector.AlignmentPattern{ap, nil} {
			grid, err := detector.Detector_sampleGrid(bits, detector.Detector_createTransform(tl, tr, bl, a, dim), dim)
			if err == nil {
				if res, err := dec.Decode(grid, hints); err == nil {
					return res.GetText(), true
				}
			}
			if ap == nil {
				break // the affine guess was just tried
			}
		}
	}
	return "", false
}

// findAlignment looks for the bottom-right alignment pattern of a dim×dim code, in
// growing squares around where it would be without perspective, as ZXing does.
func findAlignment(bits *gozxing.BitMatrix, tl, tr, bl gozxing.ResultPoint, dim int, module float64) *detector.AlignmentPattern {
	brX := tr.GetX() - tl.GetX() + bl.GetX()
	brY := tr.GetY() - tl.GetY() + bl.GetY()
	f := 1 - 3/float64(dim-7) // the pattern's centre is 3 modules in from the corner
	x, y := tl.GetX()+f*(brX-tl.GetX()), tl.GetY()+f*(brY-tl.GetY())
	for allowance := 4.0; allowance <= 16; allowance *= 2 {
		r := int(allowance * module)
		x0, x1 := max(int(x)-r, 0), min(int(x)+r, bits.GetWidth()-1)
		y0, y1 := max(int(y)-r, 0), min(int(y)+r, bits.GetHeight()-1)
		if float64(x1-x0) < 3*module || float64(y1-y0) < 3*module {
			return nil
		}
		if p, err := detector.NewAlignmentPatternFinder(bits, x0, y0, x1-x0, y1-y0, module, nil).Find(); err == nil {
			return p
		}
	}
	return nil
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
//
// Each column of three is sorted once per row, and the median of the nine is the median
// of the largest of the three columns' minima, the median of their medians and the
// smallest of their maxima (exact: the same as sorting the nine).
func (g *gray) median3() *gray {
	out := newGray(g.w, g.h)
	copy(out.pix, g.pix)
	if g.w < 3 || g.h < 3 {
		return out
	}
	lo, mid, hi := make([]uint8, g.w), make([]uint8, g.w), make([]uint8, g.w)
	for y := 1; y < g.h-1; y++ {
		r0, r1, r2 := g.pix[(y-1)*g.w:y*g.w], g.pix[y*g.w:(y+1)*g.w], g.pix[(y+1)*g.w:(y+2)*g.w]
		for x := range lo {
			a, b, c := r0[x], r1[x], r2[x]
			if a > b {
				a, b = b, a
			}
			if b > c {
				b, c = c, b
			}
			if a > b {
				a, b = b, a
			}
			lo[x], mid[x], hi[x] = a, b, c
		}
		dst := out.pix[y*g.w : (y+1)*g.w]
		for x := 1; x < g.w-1; x++ {
			dst[x] = med3(max(lo[x-1], lo[x], lo[x+1]), med3(mid[x-1], mid[x], mid[x+1]), min(hi[x-1], hi[x], hi[x+1]))
		}
	}
	return out
}

// med3 is the median of three values.
func med3(a, b, c uint8) uint8 { return max(min(a, b), min(max(a, b), c)) }

// upscaled enlarges the image k times with bilinear interpolation, so that codes with one
// or two pixels per module get modules the finder-pattern search can measure.
func (g *gray) upscaled(k int) *gray {
	out := newGray(g.w*k, g.h*k)
	// Source index and 8-bit weight of the right (or lower) neighbour, per output column
	// and row; pixel centres are aligned.
	taps := func(n, src int) ([]int, []int32) {
		idx, wt := make([]int, n), make([]int32, n)
		for i := range idx {
			pos := (float64(i)+0.5)/float64(k) - 0.5
			if pos < 0 {
				pos = 0
			}
			j := min(int(pos), src-1)
			idx[i], wt[i] = j, int32((pos-float64(j))*256+0.5)
		}
		return idx, wt
	}
	xi, xw := taps(out.w, g.w)
	yi, yw := taps(out.h, g.h)
	for y := 0; y < out.h; y++ {
		r0 := g.pix[yi[y]*g.w : (yi[y]+1)*g.w]
		r1 := g.pix[min(yi[y]+1, g.h-1)*g.w:][:g.w]
		fy := yw[y]
		dst := out.pix[y*out.w : (y+1)*out.w]
		for x := range dst {
			x0 := xi[x]
			x1 := min(x0+1, g.w-1)
			fx := xw[x]
			top := int32(r0[x0])*(256-fx) + int32(r0[x1])*fx
			bot := int32(r1[x0])*(256-fx) + int32(r1[x1])*fx
			dst[x] = uint8((top*(256-fy) + bot*fy + 1<<15) >> 16)
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

// blurred applies the 9-tap binomial filter (1 8 28 56 70 56 28 8 1)/256 along rows and
// columns: a gaussian blur of sigma √2, with edge pixels repeated.
func (g *gray) blurred() *gray {
	const r = 4
	k := [2*r + 1]int32{1, 8, 28, 56, 70, 56, 28, 8, 1}
	tmp := make([]int32, g.w*g.h)
	pad := make([]int32, g.w+2*r)
	for y := 0; y < g.h; y++ {
		row := g.pix[y*g.w : (y+1)*g.w]
		for i := range pad {
			pad[i] = int32(row[min(max(i-r, 0), g.w-1)])
		}
		out := tmp[y*g.w : (y+1)*g.w]
		for x := range out {
			p := pad[x : x+2*r+1 : x+2*r+1]
			out[x] = k[0]*p[0] + k[1]*p[1] + k[2]*p[2] + k[3]*p[3] + k[4]*p[4] +
				k[5]*p[5] + k[6]*p[6] + k[7]*p[7] + k[8]*p[8]
		}
	}
	out := newGray(g.w, g.h)
	var rows [2*r + 1][]int32
	for y := 0; y < g.h; y++ {
		for i := range rows {
			yy := min(max(y+i-r, 0), g.h-1)
			rows[i] = tmp[yy*g.w : (yy+1)*g.w]
		}
		dst := out.pix[y*g.w : (y+1)*g.w]
		for x := range dst {
			acc := k[0]*rows[0][x] + k[1]*rows[1][x] + k[2]*rows[2][x] + k[3]*rows[3][x] +
				k[4]*rows[4][x] + k[5]*rows[5][x] + k[6]*rows[6][x] + k[7]*rows[7][x] + k[8]*rows[8][x]
			dst[x] = uint8((acc + 1<<15) >> 16)
		}
	}
	return out
}

// sharpened is an unsharp mask (the image plus 1.5 times its difference from a blurred
// copy): it restores the module edges of an out-of-focus code.
func (g *gray) sharpened() *gray { return g.unsharp(g.blurred(), 6) }

// unsharp adds q/4 times the image's difference from b, its blurred copy (g.blurred()).
// A strong mask (q = 16) separates the modules of a small, blurred code (2.5 pixels per
// module, as a phone held far from the camera gives) that a mild one leaves merged.
func (g *gray) unsharp(b *gray, q int) *gray {
	out := newGray(g.w, g.h)
	for i, v := range g.pix {
		d := int(v) - int(b.pix[i])
		out.pix[i] = uint8(min(max(int(v)+d*q/4, 0), 255))
	}
	return out
}
