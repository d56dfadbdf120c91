package qr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/qr/internal/distort"
)

func TestDecodeImage_RoundTrip(t *testing.T) {
	tests := []struct{ name, text string }{
		{"ascii", "HELLO WORLD"},
		{"url", "https://qr.95516.com/00010000/01234567890123456789"},
		{"wallet-code", "134567890123456789"},
		{"emv-ascii", payloadEMVASCII},
		{"emv-chinese", payloadEMVChinese},
		{"emv-thai", payloadEMVThai},
		{"chinese", "最佳运输北京"},
		{"kanji", "日本語"},
		{"thai", "ร้านกาแฟดีดี"},
		{"emoji", "💳✅🇹🇭"},
		{"multiline", "line 1\nline 2\r\n\ttabbed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Encode(tt.text, EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeImage(c.Image(3, QuietZone))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.text {
				t.Errorf("got %q, want %q", got, tt.text)
			}
		})
	}
}

// TestDecodeImage_Types decodes the same code from every kind of image the standard
// library's decoders return, including ones whose bounds do not start at (0, 0).
func TestDecodeImage_Types(t *testing.T) {
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := c.Image(3, QuietZone)
	b := g.Bounds()
	convert := func(dst draw.Image) image.Image {
		draw.Draw(dst, dst.Bounds(), g, b.Min, draw.Src)
		return dst
	}
	// A transparent background must read as white, as a browser shows it.
	transparent := image.NewNRGBA(b)
	premul := image.NewRGBA(b)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if g.GrayAt(x, y).Y == 0 {
				transparent.SetNRGBA(x, y, color.NRGBA{0, 0, 80, 0xFF})
				premul.SetRGBA(x, y, color.RGBA{0, 0, 0, 0xFF})
			}
		}
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, convert(image.NewRGBA(b)), &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	ycbcr, err := jpeg.Decode(&jpg)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ycbcr.(*image.YCbCr); !ok {
		t.Fatalf("jpeg.Decode gave %T, want *image.YCbCr", ycbcr)
	}
	offset := image.NewGray(image.Rect(-50, 30, b.Dx()-50+17, b.Dy()+30+9))
	draw.Draw(offset, offset.Bounds(), image.White, image.Point{}, draw.Src)
	draw.Draw(offset, b.Add(image.Pt(-50, 30)), g, b.Min, draw.Src)

	images := map[string]image.Image{
		"gray":             g,
		"gray-subimage":    offset.SubImage(offset.Bounds().Inset(3)),
		"rgba":             convert(image.NewRGBA(b)),
		"nrgba":            convert(image.NewNRGBA(b)),
		"nrgba-alpha":      transparent,
		"rgba-alpha":       premul,
		"paletted":         convert(image.NewPaletted(b, color.Palette{color.White, color.Black})),
		"gray16":           convert(image.NewGray16(b)),
		"rgba64":           convert(image.NewRGBA64(b)),
		"ycbcr":            ycbcr,
		"cmyk":             convert(image.NewCMYK(b)),
		"rgba-offset-rect": convert(image.NewRGBA(b.Add(image.Pt(7, -11)))),
	}
	for name, img := range images {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeImage(img)
			if err != nil {
				t.Fatal(err)
			}
			if got != payloadEMVChinese {
				t.Errorf("got %q, want %q", got, payloadEMVChinese)
			}
		})
	}
}

// TestDecodeImage_Large reads codes in photo-sized images, which are scaled down first:
// a big code reads in the scaled-down image, a small one needs the full-size attempt.
func TestDecodeImage_Large(t *testing.T) {
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		scale int
	}{{"big-code", 12}, {"small-code", 2}} {
		t.Run(tt.name, func(t *testing.T) {
			photo := image.NewGray(image.Rect(0, 0, 2600, 1500))
			draw.Draw(photo, photo.Bounds(), image.NewUniform(color.Gray{Y: 200}), image.Point{}, draw.Src)
			code := c.Image(tt.scale, QuietZone)
			draw.Draw(photo, code.Bounds().Add(image.Pt(1700, 300)), code, image.Point{}, draw.Src)
			text, attempt, err := decodeImage(photo)
			if err != nil {
				t.Fatal(err)
			}
			if text != payloadEMVChinese {
				t.Errorf("got %q, want %q", text, payloadEMVChinese)
			}
			t.Logf("read by the %q attempt", attempt)
		})
	}
}

// TestDecodeImage_Distortions asserts that every class of the distortion corpus decodes
// at its moderate strength, on a few seeded frames each (see TestDistortionReport for the
// full picture).
func TestDecodeImage_Distortions(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	code := corpusCode(t)
	for _, class := range distort.Classes() {
		lvl := class.Levels[class.Moderate]
		t.Run(class.Name+"/"+lvl.Name, func(t *testing.T) {
			t.Parallel()
			for _, seed := range seeds {
				got, err := DecodeImage(distort.Frame(code, lvl.Spec, seed))
				if err != nil {
					t.Errorf("seed %d: %v", seed, err)
					continue
				}
				if got != code.Text {
					t.Errorf("seed %d: got %q, want %q", seed, got, code.Text)
				}
			}
		})
	}
}

// TestDecodeImage_DistortedChinese reads non-ASCII payloads from camera frames: the ECI
// must survive the trip.
func TestDecodeImage_DistortedChinese(t *testing.T) {
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	spec := distort.Spec{Module: 3, Rotate: 15, Keystone: 0.08, Blur: 0.7, Noise: 8, Light: 0.4, JPEG: 60}
	got, err := DecodeImage(distort.Frame(c, spec, 7))
	if err != nil {
		t.Fatal(err)
	}
	if got != payloadEMVChinese {
		t.Errorf("got %q, want %q", got, payloadEMVChinese)
	}
}

// hugeImage claims enormous bounds without holding any pixels.
type hugeImage struct{}

func (hugeImage) ColorModel() color.Model { return color.GrayModel }
func (hugeImage) Bounds() image.Rectangle { return image.Rect(0, 0, 10000, 5000) }
func (hugeImage) At(x, y int) color.Color { return color.White }

func TestDecodeImage_NoCode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	noise := image.NewGray(image.Rect(0, 0, 400, 300))
	for i := range noise.Pix {
		noise.Pix[i] = uint8(rng.UintN(256))
	}
	blocks := image.NewGray(image.Rect(0, 0, 320, 240)) // random 4-pixel modules
	for y := 0; y < 240; y += 4 {
		for x := 0; x < 320; x += 4 {
			v := uint8(rng.UintN(2) * 255)
			for i := 0; i < 16; i++ {
				blocks.SetGray(x+i%4, y+i/4, color.Gray{Y: v})
			}
		}
	}
	checker := image.NewGray(image.Rect(0, 0, 200, 200))
	for i := range checker.Pix {
		if (i%200/10+i/200/10)%2 == 0 {
			checker.Pix[i] = 0xFF
		}
	}
	gradient := image.NewGray(image.Rect(0, 0, 256, 100))
	for i := range gradient.Pix {
		gradient.Pix[i] = uint8(i % 256)
	}
	// A QR code with a third of it torn off.
	c, err := Encode(payloadEMVASCII, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	torn := c.Image(4, QuietZone)
	draw.Draw(torn, image.Rect(0, 0, torn.Bounds().Dx()/3, torn.Bounds().Dy()), image.White, image.Point{}, draw.Src)

	white := image.NewGray(image.Rect(0, 0, 300, 200))
	for i := range white.Pix {
		white.Pix[i] = 0xFF
	}
	tests := map[string]image.Image{
		"white":    white,
		"black":    image.NewGray(image.Rect(0, 0, 200, 150)),
		"noise":    noise,
		"blocks":   blocks,
		"checker":  checker,
		"gradient": gradient,
		"1x1":      image.NewGray(image.Rect(0, 0, 1, 1)),
		"1x500":    image.NewGray(image.Rect(0, 0, 1, 500)),
		"empty":    image.NewGray(image.Rect(5, 5, 5, 9)),
		"torn":     torn,
	}
	for name, img := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeImage(img)
			if !errors.Is(err, ErrNoCode) {
				t.Fatalf("DecodeImage = %q, %v; want ErrNoCode", got, err)
			}
			if !strings.HasPrefix(err.Error(), "decode qr: ") {
				t.Errorf("error %q lacks the decode qr: prefix", err)
			}
		})
	}
}

func TestDecodeImage_Invalid(t *testing.T) {
	for name, img := range map[string]image.Image{
		"nil":  nil,
		"huge": hugeImage{},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeImage(img)
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Fatalf("DecodeImage = %q, %v; want ErrInvalidInput", got, err)
			}
		})
	}
}

// FuzzDecodeImage feeds arbitrary small grey images to the decoder: it must not panic,
// and an error must be ErrNoCode.
func FuzzDecodeImage(f *testing.F) {
	c, err := Encode("FUZZ", EncodeOptions{})
	if err != nil {
		f.Fatal(err)
	}
	img := c.Image(1, 2)
	f.Add(uint8(img.Bounds().Dx()), img.Pix)
	f.Add(uint8(3), []byte{0, 255, 0, 255, 0, 255, 0, 255, 0})
	f.Add(uint8(1), []byte{})
	f.Fuzz(func(t *testing.T, w uint8, pix []byte) {
		width := int(w%64) + 1
		if len(pix) > 64*64 {
			pix = pix[:64*64]
		}
		height := len(pix) / width
		g := &image.Gray{Pix: pix, Stride: width, Rect: image.Rect(0, 0, width, height)}
		if _, err := DecodeImage(g); err != nil && !errors.Is(err, ErrNoCode) {
			t.Fatalf("DecodeImage: %v, want nil or ErrNoCode", err)
		}
	})
}

func TestDecodeFile(t *testing.T) {
	dir := t.TempDir()
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	img := c.Image(4, QuietZone)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	encode := func(enc func(*bytes.Buffer) error) []byte {
		var buf bytes.Buffer
		if err := enc(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	pngData := encode(func(b *bytes.Buffer) error { return png.Encode(b, img) })
	jpegData := encode(func(b *bytes.Buffer) error { return jpeg.Encode(b, img, &jpeg.Options{Quality: 75}) })
	gifData := encode(func(b *bytes.Buffer) error { return gif.Encode(b, img, nil) })

	for name, data := range map[string][]byte{
		"code.png":     pngData,
		"code.jpg":     jpegData,
		"code.gif":     gifData,
		"png-as.jpg":   pngData, // the content decides, not the name
		"no-extension": jpegData,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := DecodeFile(write(name, data))
			if err != nil {
				t.Fatal(err)
			}
			if got != payloadEMVChinese {
				t.Errorf("got %q, want %q", got, payloadEMVChinese)
			}
		})
	}

	blank := encode(func(b *bytes.Buffer) error { return png.Encode(b, image.NewGray(image.Rect(0, 0, 50, 50))) })
	errorTests := []struct {
		name string
		data []byte
		want error
	}{
		{"text.png", []byte("this is not an image"), posagent.ErrInvalidInput},
		{"empty.png", nil, posagent.ErrInvalidInput},
		{"bmp.bmp", append([]byte("BM"), make([]byte, 60)...), posagent.ErrInvalidInput},
		{"truncated.png", pngData[:len(pngData)/2], posagent.ErrInvalidInput},
		{"truncated.jpg", jpegData[:40], posagent.ErrInvalidInput},
		{"bomb.png", pngHeaderClaiming(t, 20000, 20000), posagent.ErrInvalidInput},
		{"blank.png", blank, ErrNoCode},
	}
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			path := write(tt.name, tt.data)
			got, err := DecodeFile(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeFile = %q, %v; want %v", got, err, tt.want)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(dir, "missing.png")
		_, err := DecodeFile(path)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error %q does not name the file", err)
		}
	})
}

// pngHeaderClaiming returns a tiny PNG whose header announces a w×h image: DecodeFile
// must refuse it before allocating the pixels.
func pngHeaderClaiming(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	// Signature (8) + IHDR length (4) + "IHDR" (4), then width and height, then 5 bytes
	// of IHDR fields and the chunk CRC over type and data.
	binary.BigEndian.PutUint32(data[16:], w)
	binary.BigEndian.PutUint32(data[20:], h)
	binary.BigEndian.PutUint32(data[29:], crc32.ChecksumIEEE(data[12:29]))
	return data
}
