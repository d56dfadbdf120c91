package escpos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

// benchReceipt is a standard receipt: 30 printed lines of text on 80 mm paper (header,
// ten goods, totals, payment, free lines, footer) and an EMV QR code.
func benchReceipt(tb testing.TB) *posagent.Receipt {
	rc := sampleReceipt(tb)
	rc.Items = append(rc.Items,
		posagent.ReceiptItem{Name: "酸奶 Yoghurt", Quantity: 4, UnitPrice: 550, Amount: 2200},
		posagent.ReceiptItem{Name: "Coffee beans 250g", Quantity: 1, UnitPrice: 4800, Amount: 4800},
		posagent.ReceiptItem{Name: "鸡蛋 Eggs x10", Quantity: 1, UnitPrice: 1290, Amount: 1290},
		posagent.ReceiptItem{Name: "Batteries AA 4-pack", Quantity: 2, UnitPrice: 1800, Amount: 3600},
	)
	total := int64(0)
	for _, it := range rc.Items {
		total += it.Amount
	}
	rc.Totals[0].Amount = total
	rc.Payments[0].Amount = total
	if err := rc.Validate(); err != nil {
		tb.Fatal(err)
	}
	return rc
}

// minimumBytes is the content itself: the text as the printer's bytes, one LF per line,
// and the QR payload, with no command at all.
func minimumBytes(tb testing.TB, rc *posagent.Receipt, p *Profile) (textLines, n int) {
	lines, err := Layout(rc, p)
	if err != nil {
		tb.Fatal(err)
	}
	cs := newCharset(p)
	for _, ln := range lines {
		if ln.QR != "" {
			n += len(ln.QR)
			continue
		}
		textLines++
		for _, g := range cs.glyphs(ln.Text) {
			n += len(g.b)
		}
		n++
	}
	return textLines, n
}

// BenchmarkEncodeReceipt reports the bytes on the wire for the standard receipt with a
// native and a raster QR, against the minimum.
func BenchmarkEncodeReceipt(b *testing.B) {
	rc := benchReceipt(b)
	p := mustProfile(b, "generic-80")
	lines, minimum := minimumBytes(b, rc, p)
	for _, mode := range []struct {
		name string
		qr   QRMode
	}{{"native", QRNative}, {"raster", QRRaster}} {
		b.Run(mode.name, func(b *testing.B) {
			var data []byte
			for b.Loop() {
				var err error
				data, err = EncodeReceipt(rc, p, EncodeOptions{QR: mode.qr})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(lines), "text-lines")
			b.ReportMetric(float64(len(data)), "wire-bytes")
			b.ReportMetric(float64(minimum), "min-bytes")
			b.ReportMetric(float64(len(data))/float64(minimum), "x-min")
		})
	}
}

// BenchmarkPrint prints the standard receipt through a pty to the simulated printer,
// status checks included, and reports the time per job against the wire time (bytes ×
// 10 / baud) of the job alone.
func BenchmarkPrint(b *testing.B) {
	rc := benchReceipt(b)
	p := mustProfile(b, "generic-80")
	for _, mode := range []struct {
		name string
		qr   QRMode
	}{{"native", QRNative}, {"raster", QRRaster}} {
		for _, baud := range []int{9600, 115200} {
			b.Run(fmt.Sprintf("%s/%d", mode.name, baud), func(b *testing.B) {
				_, port := simPair(b, p.WidthDots)
				pr := New(port, p, Options{Baud: baud, Encode: EncodeOptions{QR: mode.qr}})
				ctx := context.Background()
				var res *Result
				for b.Loop() {
					var err error
					res, err = pr.Print(ctx, rc)
					if err != nil {
						b.Fatal(err)
					}
				}
				wire := time.Duration(res.Bytes) * 10 * time.Second / time.Duration(baud)
				b.ReportMetric(float64(res.Bytes), "wire-bytes")
				b.ReportMetric(wire.Seconds(), "wire-s")
				b.ReportMetric(res.Elapsed.Seconds(), "job-s")
				b.ReportMetric(res.Elapsed.Seconds()/wire.Seconds(), "x-wire")
			})
		}
	}
}
