package main

import (
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent/qr"
)

// writeFrames writes a recording: for each entry a 640×480 frame showing that code
// (4 pixels per module, centred), or nothing for "".
func writeFrames(t *testing.T, codes []string) string {
	t.Helper()
	dir := t.TempDir()
	for i, text := range codes {
		frame := image.NewGray(image.Rect(0, 0, 640, 480))
		for i := range frame.Pix {
			frame.Pix[i] = 100
		}
		if text != "" {
			c, err := qr.Encode(text, qr.EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			img := c.Image(4, qr.QuietZone)
			off := image.Pt((640-img.Bounds().Dx())/2, (480-img.Bounds().Dy())/2)
			draw.Draw(frame, img.Bounds().Add(off), img, image.Point{}, draw.Src)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%03d.png", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, frame); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return dir
}

// TestMain_ScanFrames replays a recording with 'posagent scan --port frames:DIR': each
// code shown on consecutive frames is one JSON line, in order; a file that is not an
// image is skipped with a warning.
func TestMain_ScanFrames(t *testing.T) {
	const wallet = "281234567890123456"
	var seq []string
	for _, n := range []struct {
		code  string
		times int
	}{{"", 3}, {wallet, 6}, {"", 2}, {specExample, 6}, {"", 2}} {
		for i := 0; i < n.times; i++ {
			seq = append(seq, n.code)
		}
	}
	dir := writeFrames(t, seq)
	if err := os.WriteFile(filepath.Join(dir, "004.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		exit     int
		lines    int
		stderrIn string
	}{
		{"every-frame", []string{"scan", "--port", "frames:" + dir, "--fps", "0"}, 0, 2, "frame skipped"},
		{"count-reached", []string{"scan", "--port", "frames:" + dir, "--fps", "0", "--count", "1"}, 0, 1, ""},
		{"count-not-reached", []string{"scan", "--port", "frames:" + dir, "--fps", "0", "--count", "3"}, 1, 2, "ended after 2 of 3"},
		{"no-frames", []string{"scan", "--port", "frames:" + t.TempDir()}, 1, 0, "no .png or .jpg files"},
		{"bad-camera", []string{"scan", "--port", "camera:video0"}, 1, 0, "camera:/dev/video0"},
		{"absent-camera", []string{"scan", "--port", "camera:" + filepath.Join(t.TempDir(), "video9"), "--timeout", "1m"}, 1, 0, "plug the camera in"},
		{"absent-usb-camera", []string{"scan", "--port", "camera:ffff:fffe", "--timeout", "1m"}, 1, 0, "no camera at ffff:fffe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, "", tt.args...)
			if code != tt.exit {
				t.Fatalf("exit %d, want %d; stderr %s", code, tt.exit, stderr)
			}
			if !strings.Contains(stderr, tt.stderrIn) {
				t.Errorf("stderr %q does not say %q", stderr, tt.stderrIn)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if out == "" {
				lines = nil
			}
			if len(lines) != tt.lines {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), tt.lines, out)
			}
			wantKinds := []string{"wallet-code", "emv-mpm"}
			for i, l := range lines {
				var cl struct{ Kind string }
				if err := json.Unmarshal([]byte(l), &cl); err != nil {
					t.Fatalf("line %d is not JSON: %v: %s", i, err, l)
				}
				if cl.Kind != wantKinds[i] {
					t.Errorf("line %d: kind %q, want %q", i, cl.Kind, wantKinds[i])
				}
				if strings.Contains(l, "1234567890123456") {
					t.Errorf("line %d shows the wallet code unmasked: %s", i, l)
				}
			}
		})
	}
}
