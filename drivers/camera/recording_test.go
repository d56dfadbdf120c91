package camera

import (
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/posagent/posagent/qr"
)

// A generated recording: what a 640×480 camera sees when a customer holds a phone up to
// it. The code is drawn dark on a light screen, on a grey background.

const recW, recH = 640, 480

// shot is one frame of a recording.
type shot struct {
	code   *qr.Code // nil: nothing in view
	cx, cy float64  // where the code's centre is, in pixels
	module float64  // pixels per module
	rotate float64  // degrees
	tilt   float64  // perspective: 0 upright, 0.3 strongly tilted
	blur   int      // box-blur radius in pixels (motion, focus)
	w, h   int      // frame size; 0 means recW×recH
}

// render draws s.
func (s shot) render() *image.Gray {
	recW, recH := recW, recH
	if s.w > 0 {
		recW, recH = s.w, s.h
	}
	img := image.NewGray(image.Rect(0, 0, recW, recH))
	for i := range img.Pix {
		img.Pix[i] = 90 // the room
	}
	if s.code != nil {
		n := float64(s.code.Size() + 2*4) // with a 4-module quiet zone
		half := n * s.module / 2
		sin, cos := math.Sincos(s.rotate * math.Pi / 180)
		for y := 0; y < recH; y++ {
			for x := 0; x < recW; x++ {
				// Into the code's frame: undo the rotation, then the tilt (the far,
				// upper edge is narrower: x is stretched by more at the top).
				dx, dy := float64(x)+0.5-s.cx, float64(y)+0.5-s.cy
				u, v := cos*dx+sin*dy, -sin*dx+cos*dy
				if s.tilt != 0 {
					k := 1 - s.tilt*(0.5-(v+half)/(2*half))
					if k <= 0 {
						continue
					}
					u /= k
				}
				mx, my := (u+half)/s.module, (v+half)/s.module
				if mx < 0 || my < 0 || mx >= n || my >= n {
					continue
				}
				c := uint8(235) // the lit screen
				if s.code.Module(int(mx)-4, int(my)-4) {
					c = 25
				}
				img.Pix[y*recW+x] = c
			}
		}
	}
	if s.blur > 0 {
		img = boxBlur(img, s.blur)
	}
	return img
}

// boxBlur averages (2r+1)² squares, twice (close to a gaussian).
func boxBlur(g *image.Gray, r int) *image.Gray {
	for pass := 0; pass < 2; pass++ {
		out := image.NewGray(g.Rect)
		w, h := g.Rect.Dx(), g.Rect.Dy()
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				sum, n := 0, 0
				for yy := max(y-r, 0); yy <= min(y+r, h-1); yy++ {
					for xx := max(x-r, 0); xx <= min(x+r, w-1); xx++ {
						sum += int(g.Pix[yy*w+xx])
						n++
					}
				}
				out.Pix[y*w+x] = uint8(sum / n)
			}
		}
		g = out
	}
	return g
}

// presentation is a phone held up to the camera: the code slides in from the left,
// blurred by the motion, is tilted while the customer aims, then held steady.
func presentation(c *qr.Code) []shot {
	var out []shot
	const module = 4.0
	for i := 0; i < 6; i++ { // sliding in, partly out of view at first
		out = append(out, shot{code: c, cx: -120 + float64(i)*80, cy: 240, module: module, rotate: 8, blur: 3})
	}
	for i := 0; i < 3; i++ { // still moving: motion blur
		out = append(out, shot{code: c, cx: 300 + float64(i)*5, cy: 240, module: module, rotate: 5, blur: 2})
	}
	for i := 0; i < 4; i++ { // aiming: tilted and turned
		out = append(out, shot{code: c, cx: 320, cy: 240, module: module, rotate: 15 + float64(i)*3, tilt: 0.25})
	}
	for i := 0; i < 12; i++ { // steady
		out = append(out, shot{code: c, cx: 320 + float64(i%2), cy: 240, module: module, rotate: 3})
	}
	return out
}

func empty(n int) []shot { return make([]shot, n) }

// writeRecording writes the shots as numbered frames in a new directory, PNG or JPEG
// (alternating when mixed is set, to replay both).
func writeRecording(t testing.TB, shots []shot, mixed bool) string {
	t.Helper()
	dir := t.TempDir()
	for i, s := range shots {
		img := s.render()
		ext := ".png"
		if mixed && i%2 == 1 {
			ext = ".jpg"
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("frame-%04d%s", i, ext)))
		if err != nil {
			t.Fatal(err)
		}
		if ext == ".png" {
			err = png.Encode(f, img)
		} else {
			err = jpeg.Encode(f, img, &jpeg.Options{Quality: 85})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func mustEncode(t testing.TB, text string) *qr.Code {
	t.Helper()
	c, err := qr.Encode(text, qr.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
