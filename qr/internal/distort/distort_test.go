package distort

import (
	"bytes"
	"image"
	"strings"
	"testing"
)

// grid is a Symbol: a 21×21 checkerboard with finder-like corners.
type grid struct{}

func (grid) Size() int { return 21 }
func (grid) Module(x, y int) bool {
	return (x+y)%2 == 0 || (x < 7 && y < 7) || (x > 13 && y < 7) || (x < 7 && y > 13)
}

// pixels returns the frame's raw samples.
func pixels(t *testing.T, img image.Image) []byte {
	t.Helper()
	if got, want := img.Bounds(), image.Rect(0, 0, Width, Height); got != want {
		t.Fatalf("frame bounds %v, want %v", got, want)
	}
	switch m := img.(type) {
	case *image.Gray:
		return m.Pix
	case *image.RGBA:
		return m.Pix
	case *image.YCbCr:
		return append(append(append([]byte(nil), m.Y...), m.Cb...), m.Cr...)
	}
	t.Fatalf("unexpected frame type %T", img)
	return nil
}

func TestFrame_Deterministic(t *testing.T) {
	for _, class := range Classes() {
		lvl := class.Levels[class.Moderate]
		a := pixels(t, Frame(grid{}, lvl.Spec, 7))
		b := pixels(t, Frame(grid{}, lvl.Spec, 7))
		if !bytes.Equal(a, b) {
			t.Errorf("%s/%s: two frames with the same seed differ", class.Name, lvl.Name)
		}
		if c := pixels(t, Frame(grid{}, lvl.Spec, 8)); bytes.Equal(a, c) {
			t.Errorf("%s/%s: seeds 7 and 8 give the same frame", class.Name, lvl.Name)
		}
	}
}

func TestFrame_Types(t *testing.T) {
	tests := []struct {
		spec Spec
		want string
	}{
		{Spec{}, "*image.Gray"},
		{Spec{Tint: 0.5}, "*image.RGBA"},
		{Spec{JPEG: 50}, "*image.Gray"},
		{Spec{Tint: 0.5, JPEG: 50}, "*image.YCbCr"},
	}
	for _, tt := range tests {
		img := Frame(grid{}, tt.spec, 1)
		if got := typeName(img); got != tt.want {
			t.Errorf("Frame(%+v) is %s, want %s", tt.spec, got, tt.want)
		}
	}
}

func typeName(img image.Image) string {
	switch img.(type) {
	case *image.Gray:
		return "*image.Gray"
	case *image.RGBA:
		return "*image.RGBA"
	case *image.YCbCr:
		return "*image.YCbCr"
	}
	return "other"
}

// TestFrame_Contrast checks the photometric model: a clean frame shows the paper and the
// ink at their grey levels.
func TestFrame_Contrast(t *testing.T) {
	for _, tt := range []struct {
		spec       Spec
		ink, paper uint8
	}{
		{Spec{}, 35, 235},
		{Spec{Contrast: 30}, 120, 150},
		{Spec{Invert: true}, 235, 35},
	} {
		var count [256]int
		for _, v := range Frame(grid{}, tt.spec, 1).(*image.Gray).Pix {
			count[v]++
		}
		// The 21-module grid is at least 84 pixels square; a good part of it is solid ink,
		// and the quiet zone is solid paper.
		if count[tt.ink] < 1000 || count[tt.paper] < 1000 {
			t.Errorf("%+v: %d pixels of ink (%d) and %d of paper (%d), want ≥ 1000 each",
				tt.spec, count[tt.ink], tt.ink, count[tt.paper], tt.paper)
		}
	}
}

func TestClasses(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Classes() {
		if seen[c.Name] {
			t.Errorf("class %q twice", c.Name)
		}
		seen[c.Name] = true
		if c.Moderate < 0 || c.Moderate >= len(c.Levels) {
			t.Errorf("class %q: Moderate %d out of range", c.Name, c.Moderate)
		}
		for _, l := range c.Levels {
			if l.Name == "" || strings.ContainsAny(l.Name, " /") {
				t.Errorf("class %q: level name %q must be non-empty, without spaces or slashes", c.Name, l.Name)
			}
		}
	}
}
