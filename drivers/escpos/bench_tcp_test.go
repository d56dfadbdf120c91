package escpos

import (
	"context"
	"testing"

	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/netport"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

// BenchmarkPrintTCP prints the standard receipt over TCP to possim's network printer, status
// checks included (DLE EOT through the socket), with the transport's pacing (none: TCP has
// flow control), beside BenchmarkPrint's serial figures. job-s is one job from the first
// status request to the last answer, including the driver's settle time before the final
// status.
func BenchmarkPrintTCP(b *testing.B) {
	rc := benchReceipt(b)
	p := mustProfile(b, "generic-80")
	for _, mode := range []struct {
		name string
		qr   QRMode
	}{{"native", QRNative}, {"raster", QRRaster}} {
		b.Run(mode.name, func(b *testing.B) {
			sim := possimtest.TCPPrinter(b, p.WidthDots)
			port, err := netport.Open(context.Background(), sim.Addr(), connport.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer port.Close()
			rate, chunk := ports.PrinterPacing(netport.Prefix+sim.Addr(), 0)
			pr := New(port, p, Options{Baud: rate, ChunkSize: chunk, Encode: EncodeOptions{QR: mode.qr}})
			ctx := context.Background()
			var res *Result
			for b.Loop() {
				res, err = pr.Print(ctx, rc)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(res.Bytes), "wire-bytes")
			b.ReportMetric(res.Elapsed.Seconds(), "job-s")
			b.ReportMetric((res.Elapsed - pr.opts.Settle).Seconds(), "job-minus-settle-s")
		})
	}
}
