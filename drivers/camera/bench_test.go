package camera

import (
	"context"
	"errors"
	"image"
	"io"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/qr"
)

// benchShots is a mix of what a camera at a checkout sees: mostly nobody (the empty
// counter), a phone sliding in, blurred, tilted, then held steady, at frame size w×h,
// the code scaled with the frame.
func benchShots(tb testing.TB, w, h int) []shot {
	c := mustEncode(tb, emvCode)
	k := float64(w) / recW
	var out []shot
	for i := 0; i < 10; i++ {
		out = append(out, shot{w: w, h: h})
	}
	for _, s := range presentation(c) {
		s.w, s.h = w, h
		s.cx, s.cy, s.module = s.cx*k, s.cy*k, s.module*k
		s.blur = int(float64(s.blur) * k)
		out = append(out, s)
	}
	return out
}

// BenchmarkFrameDecode is the camera pipeline's decoder on one frame at a time
// (qr.FrameDecoder over a recording, in order, as the Scanner calls it), at the two usual
// UVC sizes. It reports the per-frame time's median and 99th percentile (p50-ms,
// p99-ms) over the recording's frames:
//
//	go test ./drivers/camera -run '^$' -bench FrameDecode
func BenchmarkFrameDecode(b *testing.B) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"640x480", 640, 480}, {"1280x720", 1280, 720}} {
		b.Run(size.name, func(b *testing.B) {
			shots := benchShots(b, size.w, size.h)
			frames := make([]image.Image, len(shots))
			for i, s := range shots {
				frames[i] = s.render()
			}
			var times []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				var d qr.FrameDecoder
				for _, f := range frames {
					start := time.Now()
					d.Decode(f)
					times = append(times, time.Since(start))
				}
			}
			b.StopTimer()
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkPipelineCPU plays a 640×480 recording through the frames: source and the
// Scanner at 15 fps in real time, as a camera delivers it, and reports the process's CPU
// time (user + system, getrusage) as a share of one core over the playback (cpu-%), and
// the frames dropped (dropped-%). Each iteration plays the recording once (about 2.5 s):
//
//	go test ./drivers/camera -run '^$' -bench PipelineCPU -benchtime 3x
func BenchmarkPipelineCPU(b *testing.B) {
	shots := benchShots(b, recW, recH)
	dir := writeRecording(b, shots, false)
	var cpu, wall time.Duration
	var dropped, frames int64
	for i := 0; i < b.N; i++ {
		src, err := OpenDir(dir, 15)
		if err != nil {
			b.Fatal(err)
		}
		before := rusage(b)
		start := time.Now()
		s := NewScanner(src, Config{})
		for {
			_, err := s.Next(context.Background())
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		wall += time.Since(start)
		cpu += rusage(b) - before
		st := s.Stats()
		dropped, frames = dropped+st.Dropped, frames+st.Frames
		s.Close()
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	b.ReportMetric(100*float64(dropped)/float64(frames), "dropped-%")
}

func rusage(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
