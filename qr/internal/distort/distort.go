// Package distort turns a QR code into camera-like frames for decoder tests and
// benchmarks: a 640×480 picture of the code printed on paper (or shown on a screen) lying
// on a desk, seen with small modules, rotated, in perspective, blurred, noisy, unevenly
// lit, faded, inverted, tinted or JPEG-compressed.
//
// Frames are deterministic: the same Symbol, Spec and seed always give the same pixels,
// so a decoder's success rate over seeds 1..N is a figure that can be compared across
// runs and decoders. The seed moves the code in the frame and jitters its angle and size
// a little, and drives the noise.
//
// The geometry is rendered exactly from the module grid (each pixel integrates 4×4
// samples of the projected code), not by resampling a rendered image, so a 1.2 pixel
// module looks as a camera would see it.
package distort

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
)

// Frame size in pixels: a VGA camera frame.
const (
	Width  = 640
	Height = 480
)

// Symbol is a QR code's module grid; *qr.Code satisfies it. (An interface rather than
// *qr.Code, so that package qr's own tests can use this package.)
type Symbol interface {
	Size() int            // modules per side, without the quiet zone
	Module(x, y int) bool // true for a dark module
}

// Spec describes one frame. The zero value is a clean, upright code at 4 pixels per
// module, black on white paper, on a grey desk.
type Spec struct {
	Module     float64 // pixels per module; 0 means 4
	Rotate     float64 // rotation in degrees, counter-clockwise
	Keystone   float64 // perspective, 0–0.7: far edge shortened by k, near edge lengthened by 0.3·k
	Blur       float64 // gaussian blur sigma in pixels (focus, motion)
	Noise      float64 // gaussian sensor noise sigma in grey levels (of 255)
	SaltPepper float64 // fraction of pixels forced to black or white
	Light      float64 // uneven light, 0–1: gradient and vignette; at 1 the darkest spot is black
	Contrast   float64 // luminance difference between ink and paper in grey levels; 0 means 200
	Invert     bool    // light modules on a dark background (a phone in dark mode)
	Tint       float64 // colour, 0–1: tinted paper and coloured ink; the frame is RGB
	JPEG       int     // JPEG quality 1–100 the frame is compressed at; 0 means none
}

// Level is one strength of a distortion class.
type Level struct {
	Name string // short, without spaces, e.g. "sigma1.8" or "45deg"
	Spec Spec
}

// Class is a kind of distortion at increasing strengths.
type Class struct {
	Name   string
	Levels []Level // mildest first
	// Moderate is the index in Levels of the strength a phone-grade decoder is expected
	// to read every time; tests assert it, benchmarks report all levels.
	Moderate int
}

// Classes returns the distortion corpus, one class per kind of distortion.
func Classes() []Class {
	return []Class{
		{Name: "clean", Levels: []Level{
			{"4px", Spec{}},
		}},
		{Name: "small", Moderate: 0, Levels: []Level{
			{"2px", Spec{Module: 2}},
			{"1.5px", Spec{Module: 1.5}},
			{"1.2px", Spec{Module: 1.2}},
		}},
		{Name: "rotate", Moderate: 2, Levels: []Level{
			{"10deg", Spec{Rotate: 10}},
			{"30deg", Spec{Rotate: 30}},
			{"45deg", Spec{Rotate: 45}},
			{"90deg", Spec{Rotate: 90}},
		}},
		{Name: "perspective", Moderate: 1, Levels: []Level{
			{"k0.1", Spec{Keystone: 0.1}},
			{"k0.15", Spec{Keystone: 0.15}},
			{"k0.2", Spec{Keystone: 0.2}},
		}},
		{Name: "blur", Moderate: 1, Levels: []Level{
			{"sigma1", Spec{Blur: 1}},
			{"sigma1.5", Spec{Blur: 1.5}},
			{"sigma2", Spec{Blur: 2}},
		}},
		{Name: "noise", Moderate: 1, Levels: []Level{
			{"sigma20", Spec{Noise: 20}},
			{"sigma40", Spec{Noise: 40}},
			{"sigma70", Spec{Noise: 70}},
		}},
		{Name: "saltpepper", Moderate: 1, Levels: []Level{
			{"2pct", Spec{SaltPepper: 0.02}},
			{"5pct", Spec{SaltPepper: 0.05}},
			{"10pct", Spec{SaltPepper: 0.10}},
		}},
		{Name: "light", Moderate: 1, Levels: []Level{
			{"0.5", Spec{Light: 0.5}},
			{"0.75", Spec{Light: 0.75}},
			{"0.9", Spec{Light: 0.9}},
		}},
		{Name: "contrast", Moderate: 1, Levels: []Level{
			{"60", Spec{Contrast: 60}},
			{"30", Spec{Contrast: 30}},
			{"15", Spec{Contrast: 15}},
		}},
		{Name: "inverted", Moderate: 1, Levels: []Level{
			{"screen", Spec{Invert: true}},
			{"dim", Spec{Invert: true, Contrast: 80}},
			{"dim-noisy", Spec{Invert: true, Contrast: 80, Noise: 15, Blur: 0.8}},
		}},
		{Name: "tint", Moderate: 1, Levels: []Level{
			{"0.4", Spec{Tint: 0.4}},
			{"0.7", Spec{Tint: 0.7}},
			{"0.9", Spec{Tint: 0.9}},
		}},
		{Name: "handheld", Moderate: 1, Levels: []Level{ // a phone camera: everything at once, mildly
			{"steady", Spec{Module: 4, Rotate: 10, Keystone: 0.05, Blur: 0.6, Noise: 6, Light: 0.3, JPEG: 70}},
			{"typical", Spec{Module: 3, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4}},
			{"far", Spec{Module: 2.5, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4, JPEG: 60}},
		}},
		{Name: "jpeg", Moderate: 1, Levels: []Level{
			{"q30", Spec{Module: 3, JPEG: 30}},
			{"q15", Spec{Module: 3, JPEG: 15}},
			{"q7", Spec{Module: 3, JPEG: 7}},
		}},
	}
}

// Geometry constants.
const (
	quietZone   = 4 // light modules around the code
	paperMargin = 3 // more paper beyond the quiet zone, then the desk
	supersample = 4 // samples per pixel side
)

// Frame renders sym as a Width×Height camera frame described by s. The result is an
// *image.Gray, an *image.RGBA when s.Tint > 0, or what image/jpeg decodes when s.JPEG > 0.
func Frame(sym Symbol, s Spec, seed uint64) image.Image {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	f := newFrame(s.Tint > 0)

	modulePx := s.Module
	if modulePx <= 0 {
		modulePx = 4
	}
	modulePx *= 1 + (rng.Float64()-0.5)*0.08
	angle := s.Rotate + (rng.Float64()-0.5)*4
	if s.Keystone > 0 {
		angle += 90 * float64(rng.IntN(4)) // tilt away any side
	}

	// Colours: paper, ink, desk.
	contrast := s.Contrast
	if contrast <= 0 {
		contrast = 200
	}
	mid := 135.0
	paperY, inkY := mid+contrast/2, mid-contrast/2
	if s.Invert {
		paperY, inkY = inkY, paperY
	}
	paper := [3]float64{paperY, paperY, paperY}
	ink := [3]float64{inkY, inkY, inkY}
	desk := [3]float64{95, 90, 85}
	if s.Tint > 0 {
		hue := rng.Float64()
		paper = mix(paper, scaleTo(hsv(hue, 0.9), paperY), s.Tint)
		ink = mix(ink, scaleTo(hsv(hue+0.5, 1), math.Max(inkY, 60)), s.Tint)
		desk = mix(desk, hsv(hue+0.25, 0.4), 0.3*s.Tint)
	}

	// Where the paper lands in the frame.
	n := float64(sym.Size() + 2*(quietZone+paperMargin)) // paper side in modules
	side := n * modulePx
	k := math.Min(math.Max(s.Keystone, 0), 0.7)
	corners := [4][2]float64{ // top-left, top-right, bottom-right, bottom-left; centred
		{-side / 2 * (1 - k), -side / 2 * (1 - 0.3*k)},
		{side / 2 * (1 - k), -side / 2 * (1 - 0.3*k)},
		{side / 2 * (1 + 0.3*k), side / 2 * (1 - 0.3*k)},
		{-side / 2 * (1 + 0.3*k), side / 2 * (1 - 0.3*k)},
	}
	sin, cos := math.Sincos(-angle * math.Pi / 180) // image y points down
	minX, minY, maxX, maxY := math.Inf(1), math.Inf(1), math.Inf(-1), math.Inf(-1)
	for i, c := range corners {
		x, y := c[0]*cos-c[1]*sin, c[0]*sin+c[1]*cos
		corners[i] = [2]float64{x, y}
		minX, maxX = math.Min(minX, x), math.Max(maxX, x)
		minY, maxY = math.Min(minY, y), math.Max(maxY, y)
	}
	cx := Width/2 + shift(rng, Width-(maxX-minX)) - (minX+maxX)/2
	cy := Height/2 + shift(rng, Height-(maxY-minY)) - (minY+maxY)/2
	for i := range corners {
		corners[i][0] += cx
		corners[i][1] += cy
	}
	toPaper := squareToQuad(corners).inverse() // frame pixel → unit paper square

	// Desk: a smooth, slightly uneven surface.
	fx, fy, ph := 0.5+rng.Float64(), 0.5+rng.Float64(), rng.Float64()*2*math.Pi
	deskAt := func(x, y int) float64 {
		return 1 + 0.08*math.Sin(fx*float64(x)/60+ph)*math.Cos(fy*float64(y)/50)
	}

	x0, x1 := clampInt(int(minX+cx)-1, 0, Width), clampInt(int(maxX+cx)+2, 0, Width)
	y0, y1 := clampInt(int(minY+cy)-1, 0, Height), clampInt(int(maxY+cy)+2, 0, Height)
	size := sym.Size()
	offset := float64(quietZone + paperMargin)
	const samples = supersample * supersample
	for y := 0; y < Height; y++ {
		for x := 0; x < Width; x++ {
			var nInk, nPaper int
			if x >= x0 && x < x1 && y >= y0 && y < y1 {
				for sy := 0; sy < supersample; sy++ {
					for sx := 0; sx < supersample; sx++ {
						px := float64(x) + (float64(sx)+0.5)/supersample
						py := float64(y) + (float64(sy)+0.5)/supersample
						u, v := toPaper.apply(px, py)
						if u < 0 || u >= 1 || v < 0 || v >= 1 {
							continue
						}
						mx, my := int(math.Floor(u*n-offset)), int(math.Floor(v*n-offset))
						if mx >= 0 && my >= 0 && mx < size && my < size && sym.Module(mx, my) {
							nInk++
						} else {
							nPaper++
						}
					}
				}
			}
			nDesk := samples - nInk - nPaper
			d := deskAt(x, y)
			for c := range f.ch {
				f.ch[c][y*Width+x] = float32((float64(nInk)*ink[c] + float64(nPaper)*paper[c] +
					float64(nDesk)*desk[c]*d) / samples)
			}
		}
	}

	if s.Light > 0 {
		f.light(math.Min(s.Light, 1), rng)
	}
	if s.Blur > 0 {
		f.blur(s.Blur)
	}
	if s.Noise > 0 {
		f.noise(s.Noise, rng)
	}
	if s.SaltPepper > 0 {
		f.saltPepper(s.SaltPepper, rng)
	}
	img := f.image()
	if s.JPEG > 0 {
		img = recompress(img, s.JPEG)
	}
	return img
}

// shift returns a random offset in [-room/2, room/2], 0 when there is no room.
func shift(rng *rand.Rand, room float64) float64 {
	if room <= 0 {
		return 0
	}
	return (rng.Float64() - 0.5) * room * 0.9
}

func clampInt(v, lo, hi int) int { return min(max(v, lo), hi) }

// frame holds the picture as float planes (one grey plane, or R, G, B).
type frame struct{ ch [][]float32 }

func newFrame(rgb bool) *frame {
	n := 1
	if rgb {
		n = 3
	}
	f := &frame{ch: make([][]float32, n)}
	for i := range f.ch {
		f.ch[i] = make([]float32, Width*Height)
	}
	return f
}

// light darkens the frame with a linear gradient in a random direction and a vignette
// around a random point, as a lamp on one side and a cheap lens do.
func (f *frame) light(depth float64, rng *rand.Rand) {
	dir := rng.Float64() * 2 * math.Pi
	dx, dy := math.Cos(dir), math.Sin(dir)
	vx, vy := Width*(0.3+0.4*rng.Float64()), Height*(0.3+0.4*rng.Float64())
	diag := math.Hypot(Width, Height)
	gain := make([]float32, Width*Height)
	for y := 0; y < Height; y++ {
		for x := 0; x < Width; x++ {
			// g in [0, 1]: 0 fully lit, 1 at the far end of the gradient.
			g := ((float64(x)-Width/2)*dx+(float64(y)-Height/2)*dy)/diag + 0.5
			r := math.Hypot(float64(x)-vx, float64(y)-vy) / diag
			t := math.Min(0.7*g+0.6*r*r*2, 1)
			gain[y*Width+x] = float32(1 - depth*t)
		}
	}
	for _, p := range f.ch {
		for i := range p {
			p[i] *= gain[i]
		}
	}
}

// blur applies a separable gaussian blur.
func (f *frame) blur(sigma float64) {
	r := int(math.Ceil(3 * sigma))
	k := make([]float32, 2*r+1)
	var sum float32
	for i := -r; i <= r; i++ {
		k[i+r] = float32(math.Exp(-float64(i*i) / (2 * sigma * sigma)))
		sum += k[i+r]
	}
	for i := range k {
		k[i] /= sum
	}
	tmp := make([]float32, Width*Height)
	for _, p := range f.ch {
		for y := 0; y < Height; y++ {
			for x := 0; x < Width; x++ {
				var acc float32
				for i := -r; i <= r; i++ {
					acc += k[i+r] * p[y*Width+clampInt(x+i, 0, Width-1)]
				}
				tmp[y*Width+x] = acc
			}
		}
		for y := 0; y < Height; y++ {
			for x := 0; x < Width; x++ {
				var acc float32
				for i := -r; i <= r; i++ {
					acc += k[i+r] * tmp[clampInt(y+i, 0, Height-1)*Width+x]
				}
				p[y*Width+x] = acc
			}
		}
	}
}

func (f *frame) noise(sigma float64, rng *rand.Rand) {
	for _, p := range f.ch {
		for i := range p {
			p[i] += float32(rng.NormFloat64() * sigma)
		}
	}
}

func (f *frame) saltPepper(frac float64, rng *rand.Rand) {
	for i := range f.ch[0] {
		if rng.Float64() >= frac {
			continue
		}
		v := float32(0)
		if rng.IntN(2) == 1 {
			v = 255
		}
		for _, p := range f.ch {
			p[i] = v
		}
	}
}

func (f *frame) image() image.Image {
	rect := image.Rect(0, 0, Width, Height)
	if len(f.ch) == 1 {
		img := image.NewGray(rect)
		for i, v := range f.ch[0] {
			img.Pix[i] = clamp8(v)
		}
		return img
	}
	img := image.NewRGBA(rect)
	for i := 0; i < Width*Height; i++ {
		img.Pix[4*i+0] = clamp8(f.ch[0][i])
		img.Pix[4*i+1] = clamp8(f.ch[1][i])
		img.Pix[4*i+2] = clamp8(f.ch[2][i])
		img.Pix[4*i+3] = 0xFF
	}
	return img
}

func clamp8(v float32) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

func recompress(img image.Image, quality int) image.Image {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: min(max(quality, 1), 100)}); err != nil {
		panic("distort: jpeg encode: " + err.Error()) // cannot happen with an in-memory image
	}
	out, err := jpeg.Decode(&buf)
	if err != nil {
		panic("distort: jpeg decode: " + err.Error())
	}
	return out
}

// hsv returns a fully bright colour of hue h (0–1, wrapping) and saturation s, in 0–255.
func hsv(h, s float64) [3]float64 {
	h = (h - math.Floor(h)) * 6
	i := int(h)
	fr := h - float64(i)
	p, q, t := 1-s, 1-s*fr, 1-s*(1-fr)
	var r, g, b float64
	switch i {
	case 0:
		r, g, b = 1, t, p
	case 1:
		r, g, b = q, 1, p
	case 2:
		r, g, b = p, 1, t
	case 3:
		r, g, b = p, q, 1
	case 4:
		r, g, b = t, p, 1
	default:
		r, g, b = 1, p, q
	}
	return [3]float64{r * 255, g * 255, b * 255}
}

// luma is the Rec. 601 luminance of an RGB colour.
func luma(c [3]float64) float64 { return 0.299*c[0] + 0.587*c[1] + 0.114*c[2] }

// scaleTo scales c so that its luminance is y, clamping channels to 255.
func scaleTo(c [3]float64, y float64) [3]float64 {
	l := luma(c)
	if l <= 0 {
		return [3]float64{y, y, y}
	}
	for i := range c {
		c[i] = math.Min(c[i]*y/l, 255)
	}
	return c
}

func mix(a, b [3]float64, t float64) [3]float64 {
	for i := range a {
		a[i] = a[i]*(1-t) + b[i]*t
	}
	return a
}

// homography maps (x, y) to ((a·x + b·y + c)/(g·x + h·y + i), (d·x + e·y + f)/(…)).
type homography [9]float64

func (m homography) apply(x, y float64) (float64, float64) {
	w := m[6]*x + m[7]*y + m[8]
	return (m[0]*x + m[1]*y + m[2]) / w, (m[3]*x + m[4]*y + m[5]) / w
}

// squareToQuad maps the unit square's corners (0,0), (1,0), (1,1), (0,1) to q[0..3].
func squareToQuad(q [4][2]float64) homography {
	x0, y0, x1, y1 := q[0][0], q[0][1], q[1][0], q[1][1]
	x2, y2, x3, y3 := q[2][0], q[2][1], q[3][0], q[3][1]
	dx3, dy3 := x0-x1+x2-x3, y0-y1+y2-y3
	if dx3 == 0 && dy3 == 0 {
		return homography{x1 - x0, x2 - x1, x0, y1 - y0, y2 - y1, y0, 0, 0, 1}
	}
	dx1, dx2, dy1, dy2 := x1-x2, x3-x2, y1-y2, y3-y2
	den := dx1*dy2 - dx2*dy1
	g := (dx3*dy2 - dx2*dy3) / den
	h := (dx1*dy3 - dx3*dy1) / den
	return homography{x1 - x0 + g*x1, x3 - x0 + h*x3, x0, y1 - y0 + g*y1, y3 - y0 + h*y3, y0, g, h, 1}
}

// inverse returns the adjugate, which is the inverse up to a scale factor (all a
// homography needs).
func (m homography) inverse() homography {
	a, b, c, d, e, f, g, h, i := m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[8]
	return homography{
		e*i - f*h, c*h - b*i, b*f - c*e,
		f*g - d*i, a*i - c*g, c*d - a*f,
		d*h - e*g, b*g - a*h, a*e - b*d,
	}
}
