package serial

import (
	"context"
	"testing"
	"time"
)

// BenchmarkPort_Reconnect measures, with the default backoff, the time from an unplug (the
// pty closed, the link removed) to the port being connected again to the replugged device
// (a new pty behind the same link), while a reader is blocked in Read as a scanner's is.
// ns/op is that whole time; detect-ms is the part until the port noticed the unplug.
func BenchmarkPort_Reconnect(b *testing.B) {
	dev := newFakeDev(b)
	ev := make(events, 16)
	p, err := Open(context.Background(), Locator{Path: dev.link}, Options{OnEvent: ev.on, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			if _, err := p.Read(buf); err != nil {
				return
			}
		}
	}()
	var detect time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		dev.unplug()
		<-ev // Disconnected
		detect += time.Since(start)
		dev.plug()
		if e := <-ev; e.Kind != Connected {
			b.Fatalf("event %v, want connected", e.Kind)
		}
	}
	b.ReportMetric(float64(detect)/float64(time.Millisecond)/float64(b.N), "detect-ms")
}
