package possim

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/serial"
)

// BenchmarkSim_UnplugReconnect measures, through possim and drivers/serial with its
// default backoff, the time from unplugging the scanner (pty closed, link removed, a new
// pty behind the link after replug-ms) to the driver's port being connected to it again,
// while the driver is blocked reading as the scanner driver is.
func BenchmarkSim_UnplugReconnect(b *testing.B) {
	for _, down := range []time.Duration{0, 200 * time.Millisecond} {
		b.Run("replug="+down.String(), func(b *testing.B) {
			s, _ := startSim(b)
			connected := make(chan time.Time, 4)
			port := openPort(b, s.Path(ScannerName), serial.Options{OnEvent: func(e serial.Event) {
				if e.Kind == serial.Connected {
					connected <- time.Now()
				}
			}})
			go func() {
				buf := make([]byte, 64)
				for {
					if _, err := port.Read(buf); err != nil {
						return
					}
				}
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := s.Unplug(ScannerName, down); err != nil {
					b.Fatal(err)
				}
				select {
				case <-connected:
				case <-time.After(10 * time.Second):
					b.Fatal("no reconnect in 10 s")
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/reconnect")
		})
	}
}

// BenchmarkPrinter_ClientJob measures what the simulated printer spends on one job made by
// a real client library (testdata/clientjobs/golden): parsing, the layout with barcodes
// and images, QR decoding of the images, and the PNG and text files.
func BenchmarkPrinter_ClientJob(b *testing.B) {
	for _, name := range []string{"text-styles", "image-column", "codes", "escpos-images"} {
		b.Run(name, func(b *testing.B) {
			data, err := os.ReadFile(filepath.Join(clientJobsDir, "golden", name+".bin"))
			if err != nil {
				b.Fatal(err)
			}
			p := NewPrinter(b.TempDir())
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if jobs, _ := p.Parse(data); len(jobs) != 1 {
					b.Fatalf("%d jobs", len(jobs))
				}
			}
		})
	}
}
