package possim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/posagent/posagent/qr"
)

// A hand-written ESC/POS stream (not from drivers/escpos): init, Chinese mode, a centred
// bold line, GB18030 text, a native QR, a raster QR in two bands, a cut.
func printerStream(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("\x1b@\x1c&\x1ba\x01\x1bE\x01SHOP\n\x1bE\x00\x1ba\x00")
	b.WriteString("\xcb\xae 2.00\n") // 水 in GB18030
	data := "HELLO QR"
	n := len(data) + 3
	b.WriteString("\x1d(k\x03\x00\x31\x43\x04")
	b.Write([]byte{0x1d, '(', 'k', byte(n), 0, 49, 80, 48})
	b.WriteString(data)
	b.WriteString("\x1d(k\x03\x00\x31\x51\x30")
	code, err := qr.Encode("raster text", qr.EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := code.Raster(3)
	half := r.Height / 2
	for _, band := range [][2]int{{0, half}, {half, r.Height}} {
		h := band[1] - band[0]
		b.Write([]byte{0x1d, 'v', '0', 0, byte(r.WidthBytes), 0, byte(h), byte(h >> 8)})
		b.Write(r.Data[band[0]*r.WidthBytes : band[1]*r.WidthBytes])
	}
	b.WriteString("\x1dVB\x03")
	return b.Bytes()
}

func TestParseESCPOS(t *testing.T) {
	jobs, status := ParseESCPOS(printerStream(t), 384)
	if len(jobs) != 1 || status != 0 {
		t.Fatalf("%d jobs, %d status requests", len(jobs), status)
	}
	j := jobs[0]
	if got, want := j.Lines, []string{"              SHOP", "水 2.00"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	if got := strings.Join(j.QR, "|"); got != "HELLO QR|raster text" {
		t.Errorf("QR %q", got)
	}
	if j.Rasters != 1 || j.Cuts != 1 || j.Bold != 1 || len(j.Unknown) != 0 {
		t.Errorf("job %+v", j)
	}
}

func TestParseESCPOS_Overflow(t *testing.T) {
	jobs, _ := ParseESCPOS([]byte("\x1b@"+strings.Repeat("x", 40)+"\n\x1b\x99"), 384)
	if len(jobs) != 1 || jobs[0].Overflow != 1 || len(jobs[0].Lines) != 2 || len(jobs[0].Unknown) != 1 {
		t.Fatalf("jobs %+v", jobs[0])
	}
}

// TestPrinter_Serve drives the simulator through a pty: status answers, job files.
func TestPrinter_Serve(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	printerRawTTY(t, tty)
	dir := t.TempDir()
	sim := NewPrinter(dir)
	sim.WidthDots = 384
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, ptmx) }()

	ask := func(n byte) byte {
		t.Helper()
		if _, err := tty.Write([]byte{0x10, 0x04, n}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		tty.SetReadDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck
		if _, err := tty.Read(b); err != nil {
			t.Fatalf("DLE EOT %d: %v", n, err)
		}
		return b[0]
	}
	if got := [3]byte{ask(1), ask(2), ask(4)}; got != [3]byte{0x12, 0x12, 0x12} {
		t.Errorf("ready status % X", got)
	}
	sim.PaperNearEnd(true)
	if got := ask(4); got != 0x1E {
		t.Errorf("near end: %#x", got)
	}
	sim.PaperOut(true)
	if got := [3]byte{ask(1), ask(2), ask(4)}; got != [3]byte{0x1A, 0x32, 0x7E} {
		t.Errorf("paper out: % X", got)
	}
	sim.PaperOut(false)
	sim.CoverOpen(true)
	if got := [2]byte{ask(1), ask(2)}; got != [2]byte{0x1A, 0x16} {
		t.Errorf("cover open: % X", got)
	}
	sim.CoverOpen(false)

	if _, err := tty.Write(printerStream(t)); err != nil {
		t.Fatal(err)
	}
	job, err := sim.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(job.QR) != 2 {
		t.Errorf("QR %q", job.QR)
	}
	txt, err := os.ReadFile(filepath.Join(dir, "printer-job-1.txt"))
	if err != nil || !strings.Contains(string(txt), "水 2.00") {
		t.Errorf("text file %q, %v", txt, err)
	}
	// The PNG is the paper: its QR codes are readable (the decoder finds one of them).
	if text, err := qr.DecodeFile(filepath.Join(dir, "printer-job-1.png")); err != nil || (text != "HELLO QR" && text != "raster text") {
		t.Errorf("PNG QR %q, %v", text, err)
	}
	sim.Unplug()
	if err := <-served; err != ErrUnplugged {
		t.Errorf("Serve returned %v after Unplug", err)
	}
}

// rawTTY puts the pty's slave side in raw mode, as a serial port is opened.
func printerRawTTY(t *testing.T, tty *os.File) {
	t.Helper()
	if err := printerMakeRaw(tty); err != nil {
		t.Skipf("raw pty: %v", err)
	}
}
