package qr

import (
	"bytes"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/posagent/posagent"
)

// FuzzReadImage feeds arbitrary file contents to the image reader behind DecodeFile and
// `posagent qr decode`: no panic, and every failure is invalid input or ErrNoCode.
func FuzzReadImage(f *testing.F) {
	c, err := Encode("HELLO", EncodeOptions{})
	if err != nil {
		f.Fatal(err)
	}
	img := c.Image(2, QuietZone)
	for _, enc := range []func(*bytes.Buffer, image.Image) error{
		func(b *bytes.Buffer, m image.Image) error { return png.Encode(b, m) },
		func(b *bytes.Buffer, m image.Image) error { return jpeg.Encode(b, m, &jpeg.Options{Quality: 80}) },
		func(b *bytes.Buffer, m image.Image) error { return gif.Encode(b, m, nil) },
	} {
		var buf bytes.Buffer
		if err := enc(&buf, img); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()/2])
	}
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("not an image"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cfg, _, err := image.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width*cfg.Height > 1<<20 {
			t.Skip("large image: decoding it is slow, not wrong")
		}
		m, err := readImage(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Fatalf("readImage: %v does not wrap ErrInvalidInput", err)
			}
			return
		}
		if _, _, err := decodeImage(m); err != nil && !errors.Is(err, ErrNoCode) && !errors.Is(err, posagent.ErrInvalidInput) {
			t.Fatalf("decodeImage: %v", err)
		}
	})
}
