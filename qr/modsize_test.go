package qr

import (
	"errors"
	"fmt"
	"sort"
	"testing"

	"github.com/posagent/posagent/qr/internal/distort"
)

func TestModuleEstimate(t *testing.T) {
	code := corpusCode(t)
	blank := newGray(640, 480)
	for i := range blank.pix {
		blank.pix[i] = 200
	}
	tests := []struct {
		name string
		g    *gray
		want int
	}{
		{"4px", toGray(distort.Frame(code, distort.Spec{Module: 4}, 1)), 4},
		{"2px", toGray(distort.Frame(code, distort.Spec{Module: 2}, 1)), 2},
		{"far", toGray(distort.Frame(code, distort.Spec{Module: 2.5, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4, JPEG: 60}, 1)), smallModule},
		{"6px", toGray(distort.Frame(code, distort.Spec{Module: 6}, 1)), 6},
		{"blank", blank, 0},
		{"narrow", newGray(8, 8), 0},
	}
	for _, tt := range tests {
		if got := moduleEstimate(tt.g); got != tt.want {
			t.Errorf("%s: moduleEstimate = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestAttemptOrder_SameAttempts checks that the order for small modules makes every
// attempt once, as the default order does, so that it changes the time but never which
// frames are read.
func TestAttemptOrder_SameAttempts(t *testing.T) {
	count := func(as []attempt) map[string]int {
		m := map[string]int{}
		for _, a := range as {
			m[a.String()]++
		}
		return m
	}
	code := corpusCode(t)
	far := toGray(distort.Frame(code, distort.Spec{Module: 2.5, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4, JPEG: 60}, 1))
	got := attemptOrder(far)
	if got[1] != smallAttempts[1] || got[2] != smallAttempts[2] {
		t.Fatalf("a far frame does not take smallAttempts first: %v", got)
	}
	if g, w := fmt.Sprint(count(got)), fmt.Sprint(count(attempts)); g != w {
		t.Errorf("attempts for small modules: %s, want %s", g, w)
	}
	clean := toGray(distort.Frame(code, distort.Spec{}, 1))
	if got := attemptOrder(clean); fmt.Sprint(got) != fmt.Sprint(attempts) {
		t.Errorf("a clean frame's attempts: %v, want %v", got, attempts)
	}
}

// TestMedian3 compares the filter with the median of each 3×3 window sorted in full.
func TestMedian3(t *testing.T) {
	g := newGray(37, 23)
	x := uint32(1)
	for i := range g.pix {
		x = x*1664525 + 1013904223
		g.pix[i] = uint8(x >> 24)
	}
	got := g.median3()
	for y := 0; y < g.h; y++ {
		for x := 0; x < g.w; x++ {
			want := g.pix[y*g.w+x]
			if x > 0 && y > 0 && x < g.w-1 && y < g.h-1 {
				var win []int
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						win = append(win, int(g.pix[(y+dy)*g.w+x+dx]))
					}
				}
				sort.Ints(win)
				want = uint8(win[4])
			}
			if got.pix[y*g.w+x] != want {
				t.Fatalf("median at (%d, %d) = %d, want %d", x, y, got.pix[y*g.w+x], want)
			}
		}
	}
	for _, size := range [][2]int{{1, 1}, {2, 5}, {5, 2}} {
		tiny := newGray(size[0], size[1])
		if got := tiny.median3(); len(got.pix) != len(tiny.pix) {
			t.Errorf("%v: %d pixels, want %d", size, len(got.pix), len(tiny.pix))
		}
	}
}

// TestFrameDecoder_SmallModules: a far frame (2.5 pixels per module, tilted, blurred) that
// only the strong sharpening reads is read on its first frame with one attempt per frame,
// and not read with none.
func TestFrameDecoder_SmallModules(t *testing.T) {
	code := corpusCode(t)
	far := distort.Frame(code, distort.Spec{Module: 2.5, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4, JPEG: 60}, 2)
	d := &FrameDecoder{PerFrame: 1}
	f, err := d.Decode(far)
	if err != nil {
		t.Fatalf("far frame, one attempt: %v", err)
	}
	if f.Text != code.Text {
		t.Fatalf("far frame: misread %q", f.Text)
	}
	none := &FrameDecoder{PerFrame: -1}
	if _, err := none.Decode(far); !errors.Is(err, ErrNoCode) {
		t.Errorf("far frame, no other attempt: err = %v, want ErrNoCode", err)
	}
}
