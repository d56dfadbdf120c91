package possim

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseESCPOS: the simulator reads bytes from outside; no stream makes it panic,
// allocate without bound or loop.
func FuzzParseESCPOS(f *testing.F) {
	for _, name := range []string{"receipt-generic-80.bin", "receipt-generic-58.bin", "receipt-epson-tm-t88.bin"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "drivers", "escpos", "testdata", name)); err == nil {
			f.Add(b)
		}
	}
	// The jobs a real client library made (testdata/clientjobs/golden).
	if names, err := filepath.Glob(filepath.Join("testdata", "clientjobs", "golden", "*.bin")); err == nil {
		for _, name := range names {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("\x1b@\x1c&\xcb\xae\x81\x30\x81\x30\n\x1dV\x42\x00"))
	f.Add([]byte("\x1dv0\x00\xff\xff\xff\xff"))
	f.Add([]byte("\x1d(k\xff\xff\x31\x50\x30"))
	f.Add([]byte("\x10\x04\x01\x10\x04\x04\x10\x14\x01\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, _ := parseNoDecode(data)
		for _, j := range jobs {
			if len(j.elems) > maxElements {
				t.Fatalf("%d elements", len(j.elems))
			}
			// The layout and drawing (barcodes, images, character sizes) take any job.
			if paper := j.renderWith(384, false); paper.Rect.Dx() != 384 || paper.Rect.Dy() > maxPaperRows {
				t.Fatalf("paper %v", paper.Rect)
			}
		}
	})
}

// parseNoDecode is ParseESCPOS without rendering (the fuzz target renders without QR
// decoding: decoding random rasters is slow and belongs to package qr's own fuzzing).
func parseNoDecode(data []byte) ([]*PrintJob, int) {
	p := NewPrinter("")
	status := 0
	pr := newParser(&sliceSource{data: data})
	pr.answer = func(byte) { status++ }
	pr.emit = p.emit
	pr.boundary = func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cur != nil {
			p.jobs = append(p.jobs, p.cur)
			p.cur = nil
		}
	}
	pr.unknown = p.addUnknown
	pr.run() //nolint:errcheck
	pr.boundary()
	return p.jobs, status
}
