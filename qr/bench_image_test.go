package qr

import (
	"bytes"
	"fmt"
	"image"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent/qr/internal/distort"
)

// corpusFrames renders n frames (seeds 1..n) of code at one distortion level.
func corpusFrames(code *Code, lvl distort.Level, n int) []image.Image {
	frames := make([]image.Image, n)
	for i := range frames {
		frames[i] = distort.Frame(code, lvl.Spec, uint64(i+1))
	}
	return frames
}

// corpusResult is how decoders fared on the frames of one distortion level.
type corpusResult struct {
	class, level string
	n            int
	ours         int            // frames our decoder read correctly
	zbar         int            // frames zbarimg read correctly, when zbarRan
	zbarRan      bool           //
	attempts     map[string]int // which of our attempts read the frames
	oursTime     time.Duration  // our decoder's total time
	zbarTime     time.Duration  // zbarimg's total time (one process for all the frames)
	oursTimes    []time.Duration
}

// decodeFrames runs our decoder over frames and counts the correct reads.
func decodeFrames(frames []image.Image, want string) (ok int, attempts map[string]int) {
	ok, attempts, _ = decodeFramesTimed(frames, want)
	return ok, attempts
}

// decodeFramesTimed is decodeFrames that also returns the time of each frame.
func decodeFramesTimed(frames []image.Image, want string) (ok int, attempts map[string]int, times []time.Duration) {
	attempts = map[string]int{}
	for _, f := range frames {
		start := time.Now()
		text, name, err := decodeImage(f)
		times = append(times, time.Since(start))
		switch {
		case err != nil:
			attempts["(none)"]++
		case text == want:
			ok++
			attempts[name]++
		default:
			attempts["(wrong text)"]++
		}
	}
	return ok, attempts, times
}

// zbarFrames writes frames as PNG files in dir and counts those zbarimg reads correctly,
// running zbarimg once for the whole batch.
func zbarFrames(tb testing.TB, zbar, dir, prefix string, frames []image.Image, want string) int {
	tb.Helper()
	ok, _ := zbarFramesTimed(tb, zbar, dir, prefix, frames, want)
	return ok
}

// zbarFramesTimed is zbarFrames that also returns the time zbarimg took (not the time
// to write the files).
func zbarFramesTimed(tb testing.TB, zbar, dir, prefix string, frames []image.Image, want string) (int, time.Duration) {
	tb.Helper()
	paths := make([]string, len(frames))
	for i, f := range frames {
		paths[i] = filepath.Join(dir, fmt.Sprintf("%s-%03d.png", prefix, i+1))
		writeTestPNG(tb, paths[i], f)
	}
	start := time.Now()
	got := zbarDecodeBatch(tb, zbar, paths)
	took := time.Since(start)
	ok := 0
	for _, p := range paths {
		if got[p] == want {
			ok++
		}
	}
	return ok, took
}

// corpusCode is what every distorted frame shows: a typical EMV merchant-presented code.
func corpusCode(tb testing.TB) *Code {
	tb.Helper()
	c, err := Encode(payloadEMVASCII, EncodeOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// TestDistortionReport prints, for every class and strength of the distortion corpus, how
// many frames our decoder and zbarimg read. It only runs with POSAGENT_REPORT=1:
//
//	POSAGENT_REPORT=1 go test ./qr -run TestDistortionReport -v
//
// POSAGENT_REPORT_N sets the number of frames per strength (default 20).
func TestDistortionReport(t *testing.T) {
	if os.Getenv("POSAGENT_REPORT") != "1" {
		t.Skip("set POSAGENT_REPORT=1 (and -v) to print the distortion report")
	}
	n := reportN(t, 20)
	zbar := zbarPath()
	dir := t.TempDir()
	code := corpusCode(t)
	var results []corpusResult
	for _, class := range distort.Classes() {
		for _, lvl := range class.Levels {
			frames := corpusFrames(code, lvl, n)
			r := corpusResult{class: class.Name, level: lvl.Name, n: n}
			start := time.Now()
			r.ours, r.attempts, r.oursTimes = decodeFramesTimed(frames, code.Text)
			r.oursTime = time.Since(start)
			if zbar != "" {
				r.zbar, r.zbarTime = zbarFramesTimed(t, zbar, dir, class.Name+"-"+lvl.Name, frames, code.Text)
				r.zbarRan = true
			}
			results = append(results, r)
		}
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "frames: %d×%d, EMV MPM payload %d chars, version %d, level %s, %d per strength\n\n",
		distort.Width, distort.Height, len(code.Text), code.Version, code.Level, n)
	writeReport(&buf, results)
	t.Log("\n" + buf.String())
}

func writeReport(w io.Writer, results []corpusResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "distortion\tours ok/N\tzbarimg ok/N\tours ms/frame\tours median ms\tzbarimg ms/frame\tour attempts that read it")
	var ours []time.Duration
	var zbarMs []float64
	for _, r := range results {
		ours = append(ours, r.oursTimes...)
		zb, zms := "-", "-"
		if r.zbarRan {
			zb = fmt.Sprintf("%d/%d", r.zbar, r.n)
			ms := float64(r.zbarTime.Microseconds()) / 1000 / float64(r.n)
			zms = fmt.Sprintf("%.1f", ms)
			zbarMs = append(zbarMs, ms)
		}
		var names []string
		for name := range r.attempts {
			names = append(names, name)
		}
		sort.Strings(names)
		var parts []string
		for _, name := range names {
			parts = append(parts, fmt.Sprintf("%s:%d", name, r.attempts[name]))
		}
		fmt.Fprintf(tw, "%s/%s\t%d/%d\t%s\t%.1f\t%.1f\t%s\t%s\n", r.class, r.level, r.ours, r.n, zb,
			float64(r.oursTime.Microseconds())/1000/float64(r.n), medianMs(r.oursTimes), zms, strings.Join(parts, " "))
	}
	tw.Flush()
	sort.Slice(ours, func(i, j int) bool { return ours[i] < ours[j] })
	if len(ours) > 0 {
		fmt.Fprintf(w, "\nours: median %.1f ms per image, p99 %.1f ms", float64(ours[len(ours)/2].Microseconds())/1000,
			float64(ours[len(ours)*99/100].Microseconds())/1000)
	}
	if len(zbarMs) > 0 {
		sort.Float64s(zbarMs)
		fmt.Fprintf(w, "; zbarimg: median over strengths of its mean %.1f ms per image (one process per strength)", zbarMs[len(zbarMs)/2])
	}
	fmt.Fprintln(w)
}

// medianMs is the median of times in milliseconds (0 for none).
func medianMs(times []time.Duration) float64 {
	if len(times) == 0 {
		return 0
	}
	s := slices.Clone(times)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}

// BenchmarkEncode measures rendering: Encode and a PNG, as `posagent qr mpm --png` does.
func BenchmarkEncode(b *testing.B) {
	for _, bc := range []struct{ name, text string }{
		{"emv-ascii", payloadEMVASCII},
		{"emv-chinese", payloadEMVChinese},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c, err := Encode(bc.text, EncodeOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if err := c.WritePNG(io.Discard, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeFrame measures one 640×480 camera frame, clean and distorted.
func BenchmarkDecodeFrame(b *testing.B) {
	code := corpusCode(b)
	for _, bc := range []struct {
		name string
		spec distort.Spec
		seed uint64
	}{
		{"clean", distort.Spec{}, 1},
		// distort's handheld/typical: 3 px modules, turned, tilted, a little blur and noise.
		{"distorted", distort.Spec{Module: 3, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4}, 1},
		// distort's handheld/far: a phone held far away, 2.5 px modules (read by sharp8).
		{"far", distort.Spec{Module: 2.5, Rotate: 20, Keystone: 0.1, Blur: 0.8, Noise: 10, Light: 0.4, JPEG: 60}, 2},
	} {
		b.Run(bc.name, func(b *testing.B) {
			frame := distort.Frame(code, bc.spec, bc.seed)
			if _, err := DecodeImage(frame); err != nil {
				b.Fatalf("the benchmark frame does not decode: %v", err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := DecodeImage(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeDistortion runs our decoder over benchDistortionFrames seeded frames of
// every distortion class and strength. It reports the success rate (ok%) and, when
// zbarimg is installed, zbarimg's on the same frames (zbar-ok%); ns/op is the time for
// all the frames of one strength.
func BenchmarkDecodeDistortion(b *testing.B) {
	const benchDistortionFrames = 20
	code := corpusCode(b)
	zbar := zbarPath()
	dir := b.TempDir()
	for _, class := range distort.Classes() {
		b.Run(class.Name, func(b *testing.B) {
			for _, lvl := range class.Levels {
				b.Run(lvl.Name, func(b *testing.B) {
					frames := corpusFrames(code, lvl, benchDistortionFrames)
					b.ResetTimer()
					var ok int
					for i := 0; i < b.N; i++ {
						ok, _ = decodeFrames(frames, code.Text)
					}
					b.StopTimer()
					b.ReportMetric(100*float64(ok)/float64(len(frames)), "ok%")
					if zbar != "" {
						zok := zbarFrames(b, zbar, dir, class.Name+"-"+lvl.Name, frames, code.Text)
						b.ReportMetric(100*float64(zok)/float64(len(frames)), "zbar-ok%")
					}
				})
			}
		})
	}
}

// reportN is POSAGENT_REPORT_N, the frames per strength of a report, or def.
func reportN(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv("POSAGENT_REPORT_N")
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("POSAGENT_REPORT_N=%q: want a positive number", s)
	}
	return v
}
