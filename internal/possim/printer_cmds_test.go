package possim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Hand-written streams for the commands the client-library jobs do not send, each
// checked against the ESC/POS reference's meaning.

// parse1 parses data on an 80 mm printer and returns its one job.
func parse1(t *testing.T, data string) *PrintJob {
	t.Helper()
	jobs, _ := ParseESCPOS([]byte(data), 576)
	if len(jobs) != 1 {
		t.Fatalf("%d jobs, want 1", len(jobs))
	}
	return jobs[0]
}

// imageJob parses data and returns the one image element of its job.
func imageJob(t *testing.T, data string) (*PrintJob, *image.Gray) {
	t.Helper()
	j := parse1(t, data)
	var imgs []*image.Gray
	for _, e := range j.elems {
		if e.kind == elemRaster {
			imgs = append(imgs, e.img)
		}
	}
	if len(imgs) != 1 || len(j.Images) != 1 {
		t.Fatalf("%d images (%+v), want 1; unknown %q", len(imgs), j.Images, j.Unknown)
	}
	return j, imgs[0]
}

// black lists the black dots of img as "x,y".
func black(img *image.Gray) []string {
	var out []string
	for y := 0; y < img.Rect.Dy(); y++ {
		for x := 0; x < img.Rect.Dx(); x++ {
			if img.Pix[y*img.Stride+x] < 0x80 {
				out = append(out, fmt.Sprintf("%d,%d", x, y))
			}
		}
	}
	return out
}

func TestBitImage_Modes(t *testing.T) {
	// Two columns: the first with only its topmost dot, the second with the lowest dot of
	// its first byte (dot 7).
	tests := []struct {
		name string
		cmd  string
		w, h int
		dots []string
	}{
		{"8-dot single density", "\x1b*\x00\x02\x00\x80\x01", 4, 24,
			[]string{"0,0", "1,0", "0,1", "1,1", "0,2", "1,2", "2,21", "3,21", "2,22", "3,22", "2,23", "3,23"}},
		{"8-dot double density", "\x1b*\x01\x02\x00\x80\x01", 2, 24,
			[]string{"0,0", "0,1", "0,2", "1,21", "1,22", "1,23"}},
		{"24-dot single density", "\x1b*\x20\x02\x00\x80\x00\x00\x01\x00\x00", 4, 24,
			[]string{"0,0", "1,0", "2,7", "3,7"}},
		{"24-dot double density", "\x1b*\x21\x02\x00\x80\x00\x00\x00\x00\x01", 2, 24,
			[]string{"0,0", "1,23"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, img := imageJob(t, "\x1b@"+tt.cmd+"\n")
			if got := img.Rect.Size(); got != image.Pt(tt.w, tt.h) {
				t.Errorf("size %v, want %dx%d", got, tt.w, tt.h)
			}
			if got, want := strings.Join(black(img), " "), strings.Join(tt.dots, " "); got != want {
				t.Errorf("black dots %s, want %s", got, want)
			}
			if j.Images[0].Kind != "column" || len(j.Lines) != 0 || len(j.Unknown) != 0 {
				t.Errorf("job %+v", j)
			}
		})
	}
}

// Lines of bit image are the bands of one picture; text after them is text again.
func TestBitImage_BandsJoin(t *testing.T) {
	band := "\x1b*\x21\x01\x00\xff\xff\xff\n"
	j, img := imageJob(t, "\x1b@\x1b3\x18"+band+band+band+"\x1b2after\n")
	if got := img.Rect.Size(); got != image.Pt(1, 72) {
		t.Errorf("size %v, want 1x72", got)
	}
	if got := len(black(img)); got != 72 {
		t.Errorf("%d black dots, want 72", got)
	}
	if strings.Join(j.Lines, "|") != "after" {
		t.Errorf("lines %q", j.Lines)
	}
	// Two images on one line sit side by side.
	_, img = imageJob(t, "\x1b@\x1b*\x21\x01\x00\x80\x00\x00\x1b*\x21\x02\x00\x00\x00\x00\x00\x00\x01\n")
	if got, want := strings.Join(black(img), " "), "0,0 2,23"; got != want {
		t.Errorf("side by side: %s, want %s", got, want)
	}
}

func TestRaster_Scale(t *testing.T) {
	for _, tt := range []struct {
		m    byte
		w, h int
	}{{'0', 8, 2}, {'1', 16, 2}, {'2', 8, 4}, {'3', 16, 4}, {0, 8, 2}, {3, 16, 4}} {
		_, img := imageJob(t, "\x1b@\x1dv0"+string([]byte{tt.m, 1, 0, 2, 0, 0x80, 0x01}))
		if got := img.Rect.Size(); got != image.Pt(tt.w, tt.h) {
			t.Errorf("m %d: size %v, want %dx%d", tt.m, got, tt.w, tt.h)
		}
		if got := len(black(img)); got != 2*(tt.w/8)*(tt.h/2) {
			t.Errorf("m %d: %d black dots", tt.m, got)
		}
	}
}

func TestGraphics(t *testing.T) {
	// fn 112: a 10x2 raster (2 bytes a row), the first and last dot of each row black.
	raster := []byte{48, 112, 48, 1, 1, 49, 10, 0, 2, 0, 0x80, 0x40, 0x80, 0x40}
	gsParenL := func(body []byte) string {
		return "\x1d(L" + string([]byte{byte(len(body)), byte(len(body) >> 8)}) + string(body)
	}
	gs8L := func(body []byte) string {
		n := len(body)
		return "\x1d8L" + string([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}) + string(body)
	}
	print := gsParenL([]byte{48, 50})
	tests := []struct {
		name string
		data string
		w, h int
		dots string
	}{
		{"GS ( L raster", gsParenL(raster) + print, 10, 2, "0,0 9,0 0,1 9,1"},
		{"GS 8 L raster", gs8L(raster) + gs8L([]byte{48, 50}), 10, 2, "0,0 9,0 0,1 9,1"},
		{"fn 2 prints too", gsParenL(raster) + gsParenL([]byte{48, 2}), 10, 2, "0,0 9,0 0,1 9,1"},
		{"double size (bx=by=2)", gsParenL([]byte{48, 112, 48, 2, 2, 49, 1, 0, 1, 0, 0x80}) + print, 2, 2, "0,0 1,0 0,1 1,1"},
		{"column format (fn 113)", gsParenL([]byte{48, 113, 48, 1, 1, 49, 2, 0, 9, 0, 0x80, 0x00, 0x00, 0x80}) + print, 2, 9, "0,0 1,8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, img := imageJob(t, "\x1b@"+tt.data)
			if got := img.Rect.Size(); got != image.Pt(tt.w, tt.h) {
				t.Errorf("size %v, want %dx%d", got, tt.w, tt.h)
			}
			if got := strings.Join(black(img), " "); got != tt.dots {
				t.Errorf("black dots %s, want %s", got, tt.dots)
			}
			if j.Images[0].Kind != "graphics" || len(j.Unknown) != 0 {
				t.Errorf("job %+v", j)
			}
		})
	}
	// Printing with nothing stored prints nothing and says so.
	j := parse1(t, "\x1b@"+print+"x\n")
	if len(j.Images) != 0 || len(j.Unknown) != 1 {
		t.Errorf("print without graphics: %+v", j)
	}
}

func TestBarcode_Data(t *testing.T) {
	tests := []struct {
		name      string
		cmd       string
		typ, data string // "" type: not printed
	}{
		{"UPC-A 11 digits, A", "\x1dk\x00" + "03600029145\x00", "UPC-A", "036000291452"},
		{"UPC-A 12 digits, B", "\x1dkA\x0c" + "036000291452", "UPC-A", "036000291452"},
		{"UPC-A wrong check digit", "\x1dkA\x0c" + "036000291453", "", ""},
		{"UPC-E 6 digits", "\x1dk\x01" + "123456\x00", "UPC-E", "01234565"},
		{"UPC-E from UPC-A", "\x1dkB\x0b" + "01200000345", "UPC-E", "01234505"},
		{"UPC-E number system 2", "\x1dkB\x07" + "2123456", "", ""},
		{"EAN13 12 digits", "\x1dk\x02" + "590123412345\x00", "EAN13", "5901234123457"},
		{"EAN13 letters", "\x1dkC\x0c" + "59012341234A", "", ""},
		{"EAN8", "\x1dkD\x08" + "96385074", "EAN8", "96385074"},
		{"CODE39 with start and stop", "\x1dk\x04" + "*CODE 39*\x00", "CODE39", "CODE 39"},
		{"CODE39 lower case", "\x1dkE\x03" + "abc", "", ""},
		{"ITF odd", "\x1dk\x05" + "123\x00", "", ""},
		{"ITF", "\x1dkF\x04" + "1234", "ITF", "1234"},
		{"CODABAR", "\x1dkG\x06" + "a1234b", "CODABAR", "a1234b"},
		{"CODABAR without start", "\x1dk\x06" + "1234B\x00", "", ""},
		{"CODE93", "\x1dkH\x05" + "AB-12", "CODE93", "AB-12"},
		{"CODE128 set B", "\x1dkI\x07" + "{Bab{{c", "CODE128", "ab{c"},
		{"CODE128 set C", "\x1dkI\x04" + "{C\x01\x63", "CODE128", "0199"},
		{"CODE128 FNC1 and set change", "\x1dkI\x09" + "{A{1AB{C\x0c", "CODE128", "AB12"},
		{"CODE128 without code set", "\x1dkI\x03" + "abc", "", ""},
		{"CODE128 set C byte above 99", "\x1dkI\x03" + "{C\x64", "", ""},
		{"unknown symbology", "\x1dkJ\x02" + "12", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := parse1(t, "\x1b@"+tt.cmd+"after\n")
			if strings.Join(j.Lines, "|") != "after" {
				t.Errorf("lines %q: the barcode's data printed as text", j.Lines)
			}
			if tt.typ == "" {
				if len(j.Barcodes) != 0 || len(j.Unknown) != 1 {
					t.Errorf("printed %+v, unknown %q; want nothing printed and one unknown", j.Barcodes, j.Unknown)
				}
				return
			}
			if len(j.Barcodes) != 1 || len(j.Unknown) != 0 {
				t.Fatalf("barcodes %+v, unknown %q", j.Barcodes, j.Unknown)
			}
			if got := j.Barcodes[0]; got.Type != tt.typ || got.Data != tt.data {
				t.Errorf("%s %q, want %s %q", got.Type, got.Data, tt.typ, tt.data)
			}
			if !strings.Contains(j.Text, fmt.Sprintf("[barcode %s: %q]", tt.typ, tt.data)) {
				t.Errorf("text %q does not list it", j.Text)
			}
		})
	}
}

// GS h, GS w and GS H shape the symbol; ESC @ resets them.
func TestBarcode_Shape(t *testing.T) {
	ean8 := "\x1dkD\x08" + "96385074" // 67 modules
	tests := []struct {
		name              string
		setup             string
		w, h              int
		hri               string
		linesAbove, below int
	}{
		{"defaults", "", 67 * 3, 162, "none", 0, 0},
		{"GS h 50, GS w 2", "\x1dh\x32\x1dw\x02", 67 * 2, 50, "none", 0, 0},
		{"GS w 6, HRI below", "\x1dw\x06\x1dH\x02", 67 * 6, 162, "below", 0, 1},
		{"HRI both (ASCII digit)", "\x1dH3", 67 * 3, 162, "both", 1, 1},
		{"reset by ESC @", "\x1dh\x32\x1dw\x02\x1dH\x01\x1b@", 67 * 3, 162, "none", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			p := NewPrinter(out)
			jobs, _ := p.Parse([]byte("\x1b@" + tt.setup + "x\n" + ean8 + "y\n"))
			if len(jobs) != 1 || len(jobs[0].Barcodes) != 1 {
				t.Fatalf("jobs %+v", jobs)
			}
			bc := jobs[0].Barcodes[0]
			if bc.Width != tt.w || bc.Height != tt.h || bc.HRI != tt.hri {
				t.Errorf("%dx%d hri %s, want %dx%d hri %s", bc.Width, bc.Height, bc.HRI, tt.w, tt.h, tt.hri)
			}
			// The line x is 24 dots from the top margin, HRI lines 24 dots each.
			if want := paperMargin + cellH*(1+tt.linesAbove); bc.Y != want {
				t.Errorf("bars at y %d, want %d", bc.Y, want)
			}
			paper := readPaper(t, filepath.Join(out, "printer-job-1.png"))
			if got, want := paper.Rect.Dy(), bc.Y+bc.Height+cellH*(tt.below+1)+paperMargin; got != want {
				t.Errorf("paper %d dots long, want %d", got, want)
			}
			if got, err := readBarcode(paper, bc); err != nil || got != "96385074" {
				t.Errorf("read from the paper: %q, %v", got, err)
			}
		})
	}
	// A symbol wider than the paper is not printed.
	j := parse1(t, "\x1b@\x1dw\x06\x1dkI\x1a{B"+strings.Repeat("W", 24))
	if len(j.Barcodes) != 0 || len(j.Unknown) != 1 {
		t.Errorf("too wide: %+v, %q", j.Barcodes, j.Unknown)
	}
}

func TestUPCE(t *testing.T) {
	for _, tt := range []struct{ e, a string }{
		{"0123456", "01234500006"}, {"0123450", "01200000345"}, {"0123453", "01230000045"},
		{"0123454", "01234000005"}, {"1987654", "19876000005"},
	} {
		if got := expandUPCE(tt.e); got != tt.a {
			t.Errorf("expand %s: %s, want %s", tt.e, got, tt.a)
		}
		if got, ok := compressUPCE(tt.a); !ok || got != tt.e {
			t.Errorf("compress %s: %s %v, want %s", tt.a, got, ok, tt.e)
		}
	}
	if got, ok := compressUPCE("01234567890"); ok {
		t.Errorf("compress 01234567890: %s, want no UPC-E form", got)
	}
}

// Character size, emphasis and underline belong to each character, not to the line.
func TestPrintModePerCharacter(t *testing.T) {
	j := parse1(t, "\x1b@a\x1d!\x11BIG\x1d!\x00b\x1b!\x88ub\x1b!\x30W\x1b!\x00\x1b-\x02u\x1b-\x00.\n")
	if got, want := j.Lines, []string{"aBIGbubWu."}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, want %q", got, want)
	}
	want := []Span{
		{Col: 1, Text: "BIG", Width: 2, Height: 2},
		{Col: 8, Text: "ub", Bold: true, Underline: true, Width: 1, Height: 1},
		{Col: 10, Text: "W", Width: 2, Height: 2},
		{Col: 12, Text: "u", Underline: true, Width: 1, Height: 1},
	}
	if !equalSpans(j.Spans, want) {
		t.Errorf("spans %+v\nwant %+v", j.Spans, want)
	}
	if j.Bold != 1 || j.Tall != 1 {
		t.Errorf("bold %d tall %d, want 1 1", j.Bold, j.Tall)
	}
	// On the paper: the line is as tall as its tallest character; a plain character keeps
	// its own height (its box ends at the line's foot, starts 24 dots above it).
	out := t.TempDir()
	p := NewPrinter(out)
	p.Parse([]byte("\x1b@a\x1d!\x11BIG\x1d!\x00b\n\x1dV\x00"))
	paper := readPaper(t, filepath.Join(out, "printer-job-1.png"))
	top := func(x int) int {
		for y := 0; y < paper.Rect.Dy(); y++ {
			if paper.GrayAt(x, y).Y < 0xF0 {
				return y
			}
		}
		return -1
	}
	if a, big := top(cellW/2), top(cellW+cellW); a-big != cellH {
		t.Errorf("plain character starts %d dots below the double-height one, want %d", a-big, cellH)
	}
}

// A cut ends the job; what follows it and only feeds paper is not a job.
func TestFeedAfterCut(t *testing.T) {
	receipt := "\x1b@receipt\n\x1dV\x01"
	tests := []struct {
		name  string
		after string
		jobs  int
	}{
		{"LF CR", "\n\r\n\r", 1},
		{"ESC d", "\x1bd\x05", 1},
		{"ESC J", "\x1bJ\x40", 1},
		{"ESC @", "\x1b@\x1b@", 1},
		{"GS V with feed", "\x1dVB\x03", 1},
		{"spaces and LF", "   \n", 1},
		{"all of them", "\n\x1bd\x02\x1bJ\x10\x1b@\x1dVA\x00\n", 1},
		{"text", "\nnext\n", 2},
		{"a drawer pulse", "\x1bp\x00\x19\xfa", 2},
		{"an underlined blank", "\x1b-\x01  \n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, _ := ParseESCPOS([]byte(receipt+tt.after), 576)
			if len(jobs) != tt.jobs {
				t.Fatalf("%d jobs, want %d", len(jobs), tt.jobs)
			}
			if strings.Join(jobs[0].Lines, "|") != "receipt" || jobs[0].Cuts != 1 {
				t.Errorf("job 1: %q, %d cuts", jobs[0].Lines, jobs[0].Cuts)
			}
		})
	}
	// Without a cut before them, feeds are a job (a printer without a cutter feeds the
	// receipt out).
	if jobs, _ := ParseESCPOS([]byte("\x1b@\x1bd\x04"), 576); len(jobs) != 1 {
		t.Errorf("feed alone: %d jobs, want 1", len(jobs))
	}
}

// Through a pty, as posagent prints: the feed after the cut and the idle pause after it
// do not make a job file; the next receipt is job 2.
func TestPrinter_ServeFeedAfterCut(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	printerRawTTY(t, tty)
	dir := t.TempDir()
	sim := NewPrinter(dir)
	sim.IdleEnd = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- sim.Serve(ctx, ptmx) }()
	if _, err := tty.Write([]byte("\x1b@one\n\x1dV\x01\n\r\x1bd\x03")); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.WaitJob(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// The status answer proves the printer has read the feed bytes before the next job.
	if _, err := tty.Write([]byte{0x10, 0x04, 0x01}); err != nil {
		t.Fatal(err)
	}
	if _, err := tty.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := tty.Write([]byte("\x1b@two\n\x1dV\x01")); err != nil {
		t.Fatal(err)
	}
	j, err := sim.WaitJob(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(j.Lines, "|") != "two" {
		t.Errorf("job 2: %q, want the second receipt", j.Lines)
	}
	if _, err := os.Stat(filepath.Join(dir, "printer-job-3.txt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("job 3 file: %v", err)
	}
	sim.Unplug()
	<-served
}

func TestChineseAtPowerOn(t *testing.T) {
	shui := "\xcb\xae" // 水 in GB18030
	tests := []struct {
		name    string
		profile string
		data    string
		want    string
	}{
		{"generic-58 boots in Chinese mode", "generic-58", "\x1b@" + shui + "\n", "水"},
		{"xprinter-xp58 too", "xprinter-xp58", shui + "\n", "水"},
		{"ESC @ keeps it", "generic-80", "\x1b@\x1b@" + shui + "\n", "水"},
		{"FS . leaves it", "generic-80", "\x1c." + shui + "\n", "╦«"},
		{"epson-tm-t88 does not: code page PC858", "epson-tm-t88", "\x1b@" + shui + "\xd5\n", "╦«€"},
		{"FS & enters it", "epson-tm-t88", "\x1c&" + shui + "\n", "水"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pp, err := LoadPrinterProfile(tt.profile)
			if err != nil {
				t.Fatal(err)
			}
			p := NewPrinter("")
			p.SetProfile(pp)
			jobs, _ := p.Parse([]byte(tt.data))
			if len(jobs) != 1 || strings.Join(jobs[0].Lines, "|") != tt.want {
				t.Fatalf("jobs %+v, want the line %q", jobs, tt.want)
			}
		})
	}
	pp, err := LoadPrinterProfile("generic-58")
	if err != nil || pp.WidthDots != 384 || !pp.Chinese {
		t.Errorf("generic-58: %+v, %v", pp, err)
	}
	if _, err := LoadPrinterProfile("no-such-printer"); !errors.Is(err, ErrUnknownProfile) || !strings.Contains(err.Error(), "generic-80") {
		t.Errorf("unknown profile: %v", err)
	}
	file := filepath.Join(t.TempDir(), "mine.json")
	os.WriteFile(file, []byte(`{"name":"mine","width_dots":100}`), 0o644) //nolint:errcheck
	if _, err := LoadPrinterProfile(file); err == nil {
		t.Error("a width of 100 dots was accepted")
	}
}

// The new commands in the middle of a stream leave the rest of it readable.
func TestNewCommandsKeepSync(t *testing.T) {
	var b bytes.Buffer
	b.WriteString("\x1b@\x1b4\x01\x1bT\x00\x1bS\x1b=\x01\x1b$\x10\x00\x1b\\\x20\x00\x1bD\x08\x10\x18\x00")
	b.WriteString("\x1b*\x05\x01\x00")      // unknown mode: reported
	b.WriteString("\x1d(L\x02\x00\x30\x45") // an NV graphics function: skipped
	b.WriteString("\x1d8L\x02\x00\x00\x00\x30\x31")
	b.WriteString("ok\n")
	j := parse1(t, b.String())
	if strings.Join(j.Lines, "|") != "ok" || len(j.Unknown) != 1 {
		t.Errorf("lines %q, unknown %q", j.Lines, j.Unknown)
	}
}

// ESC Z prints the 2D code GS Z chose: a QR code is drawn; PDF417 is read and reported.
func TestTwoDCode(t *testing.T) {
	j := parse1(t, "\x1b@\x1dZ\x02\x1bZ\x00M\x04\x0b\x00HELLO 2D QRafter\n\x1dZ\x00\x1bZ\x02\x01\x03\x03\x00abc\n")
	if got := strings.Join(j.QR, "|"); got != "HELLO 2D QR" {
		t.Errorf("QR %q", got)
	}
	if strings.Join(j.Lines, "|") != "after|" || len(j.Unknown) != 1 {
		t.Errorf("lines %q, unknown %q", j.Lines, j.Unknown)
	}
}

// A QR module size outside 1–16 is ignored (GS ( k) or bounded (ESC Z): a job cannot make
// the PNG gigapixels large.
func TestQRModuleBounded(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  string
		want int
	}{
		{"GS ( k 200 ignored", "\x1d(k\x03\x00\x31\x43\xc8\x1d(k\x05\x00\x31\x50\x30ab\x1d(k\x03\x00\x31\x51\x30", 3},
		{"GS ( k 16 kept", "\x1d(k\x03\x00\x31\x43\x10\x1d(k\x05\x00\x31\x50\x30ab\x1d(k\x03\x00\x31\x51\x30", 16},
		{"ESC Z 255 bounded", "\x1dZ\x02\x1bZ\x00M\xff\x02\x00ab", 16},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := parse1(t, "\x1b@"+tt.cmd)
			if len(j.elems) != 1 || j.elems[0].kind != elemQR || j.elems[0].qrModule != tt.want {
				t.Fatalf("elements %+v, want one QR of module %d", j.elems, tt.want)
			}
		})
	}
}
