package camera

import (
	"testing"
)

// FuzzFrameLayout feeds driver buffers of any length and any announced geometry to the
// frame converters: they must refuse a buffer too short for the geometry and otherwise
// return an image of exactly that size whose pixels are the luminance bytes.
func FuzzFrameLayout(f *testing.F) {
	f.Add([]byte{10, 128, 20, 128, 30, 128, 40, 128}, 2, 2, 0)
	f.Add([]byte{1, 2, 3, 4, 5, 6}, 3, 2, 3)
	f.Add([]byte{}, 0, 0, 0)
	f.Add(make([]byte, 100), 5, 5, 12)
	f.Fuzz(func(t *testing.T, data []byte, w, h, stride int) {
		if w > 4096 || h > 4096 || stride > 1<<14 {
			return
		}
		if g, err := yuyvToGray(data, w, h, stride); err == nil {
			s := stride
			if s == 0 {
				s = 2 * w
			}
			if g.Rect.Dx() != w || g.Rect.Dy() != h {
				t.Fatalf("yuyv: %v for %d×%d", g.Rect, w, h)
			}
			if got, want := g.Pix[(h-1)*w+w-1], data[(h-1)*s+2*(w-1)]; got != want {
				t.Fatalf("yuyv: last pixel %d, want %d", got, want)
			}
		}
		if g, err := greyToGray(data, w, h, stride); err == nil {
			s := stride
			if s == 0 {
				s = w
			}
			if g.Rect.Dx() != w || g.Rect.Dy() != h {
				t.Fatalf("grey: %v for %d×%d", g.Rect, w, h)
			}
			if got, want := g.Pix[(h-1)*w+w-1], data[(h-1)*s+w-1]; got != want {
				t.Fatalf("grey: last pixel %d, want %d", got, want)
			}
		}
	})
}
