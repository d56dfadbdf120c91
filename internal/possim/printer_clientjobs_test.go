package possim

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/draw"
	_ "image/png" // the job PNGs
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/oned"

	"github.com/posagent/posagent/qr"
)

// The jobs in testdata/clientjobs are made by real ESC/POS client libraries,
// @point-of-sale/receipt-printer-encoder (jobs.mjs) and node-escpos (jobs-escpos.mjs),
// pinned by package-lock.json there; the scripts also write what each job asked the
// printer to print (manifest*.json).
// TestClientJobs_Golden checks the committed jobs (golden/); TestClientJobs_Live makes
// them afresh with node and npm and checks those, and that they are the committed ones.

const clientJobsDir = "testdata/clientjobs"

// clientJob is one entry of manifest.json: what the client was asked to print.
type clientJob struct {
	Name    string `json:"name"`
	Profile string `json:"profile"` // the printer's profile, "" for possim's default printer
	Lines   []struct {
		Text      string `json:"text"`
		Align     string `json:"align"`
		Bold      bool   `json:"bold"`
		Underline bool   `json:"underline"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		Runs      []struct {
			Text  string `json:"text"`
			Width int    `json:"width"`
		} `json:"runs"`
	} `json:"lines"`
	Images []struct {
		Width  int    `json:"width"` // as printed, in dots
		Height int    `json:"height"`
		Mode   string `json:"mode"`
		Align  string `json:"align"`
		// Dots per pixel of the client's pattern (1 when not given), and the pattern's size
		// (the printed size when not given); beyond it the image is white.
		ScaleX       int `json:"scale_x"`
		ScaleY       int `json:"scale_y"`
		SourceWidth  int `json:"source_width"`
		SourceHeight int `json:"source_height"`
	} `json:"images"`
	QR       []string `json:"qr"`
	Barcodes []struct {
		Type   string `json:"type"`
		Data   string `json:"data"`
		Module int    `json:"module"` // dots per module (GS w); 3 when not given
	} `json:"barcodes"`
	Cuts int `json:"cuts"`
}

func TestClientJobs_Golden(t *testing.T) {
	checkClientJobs(t, filepath.Join(clientJobsDir, "golden"))
}

func TestClientJobs_Live(t *testing.T) {
	if testing.Short() {
		t.Skip("runs node and npm (skipped with -short)")
	}
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if err := errors.Join(errNode, errNpm); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node and npm are needed in CI: %v", err)
		}
		t.Skipf("node or npm missing: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The library is installed outside the tree, as the Makefile's npm targets do.
	work := t.TempDir()
	for _, f := range []string{"package.json", "package-lock.json", "jobs.mjs", "jobs-escpos.mjs"} {
		b, err := os.ReadFile(filepath.Join(clientJobsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := os.Getenv("NPM_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "posagent-npm-cache")
	}
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	install.Dir = work
	install.Env = append(os.Environ(), "npm_config_cache="+cache, "npm_config_update_notifier=false")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm ci: %v\n%s", err, out)
	}
	out := filepath.Join(work, "out")
	for _, script := range []string{"jobs.mjs", "jobs-escpos.mjs"} {
		if b, err := exec.CommandContext(ctx, node, filepath.Join(work, script), out).CombinedOutput(); err != nil {
			t.Fatalf("node %s: %v\n%s", script, err, b)
		}
	}
	checkClientJobs(t, out)

	// The committed corpus is what this version of the library makes.
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		got, _ := os.ReadFile(filepath.Join(out, e.Name()))
		want, err := os.ReadFile(filepath.Join(clientJobsDir, "golden", e.Name()))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s differs from the committed golden/%s (%v); regenerate with: make possim-clientjobs", e.Name(), e.Name(), err)
		}
	}
}

// checkClientJobs feeds each job in dir to the simulated printer, one by one and then all
// in one stream, and compares what it printed with what the manifest asked for.
func checkClientJobs(t *testing.T, dir string) {
	t.Helper()
	var manifest []clientJob
	files, err := filepath.Glob(filepath.Join(dir, "manifest*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m []clientJob
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		manifest = append(manifest, m...)
	}
	if len(manifest) < 8 {
		t.Fatalf("%d jobs in %s", len(manifest), files)
	}
	printer := func(t *testing.T, profile, dir string) *Printer {
		t.Helper()
		p := NewPrinter(dir)
		if profile != "" {
			pp, err := LoadPrinterProfile(profile)
			if err != nil {
				t.Fatal(err)
			}
			p.SetProfile(pp)
		}
		return p
	}
	streams := map[string][]byte{} // by profile
	count := map[string]int{}
	for _, want := range manifest {
		data, err := os.ReadFile(filepath.Join(dir, want.Name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		streams[want.Profile] = append(streams[want.Profile], data...)
		count[want.Profile]++
		t.Run(want.Name, func(t *testing.T) {
			out := t.TempDir()
			p := printer(t, want.Profile, out)
			jobs, _ := p.Parse(data)
			if len(jobs) != 1 {
				t.Fatalf("%d jobs, want 1", len(jobs))
			}
			paper := readPaper(t, filepath.Join(out, "printer-job-1.png"))
			checkClientJob(t, want, jobs[0], paper, p.WidthDots)
		})
	}
	// One stream, as a client sends receipt after receipt: one job each, none for the
	// bytes that follow a cut and only feed paper.
	for profile, data := range streams {
		jobs, _ := printer(t, profile, "").Parse(data)
		if got, want := len(jobs), count[profile]; got != want {
			t.Errorf("all jobs for profile %q in one stream: %d jobs, want %d", profile, got, want)
		}
	}
}

// columns is the width of s in font A columns (a Chinese character takes two).
func columns(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0x7F {
			n++
		}
	}
	return n
}

func checkClientJob(t *testing.T, want clientJob, j *PrintJob, paper *image.Gray, widthDots int) {
	t.Helper()
	cols := widthDots / cellW
	if len(j.Unknown) > 0 {
		t.Errorf("commands not understood: %q", j.Unknown)
	}
	if j.Cuts != want.Cuts {
		t.Errorf("cuts %d, want %d", j.Cuts, want.Cuts)
	}

	// Text: the printed lines that are not blank, in order, where the alignment puts them,
	// with their print modes (spans).
	var lines []int
	for i, l := range j.Lines {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, i)
		}
	}
	if got, n := len(lines), len(want.Lines); got != n {
		t.Fatalf("%d printed lines %q, want %d", got, j.Lines, n)
	}
	for k, wl := range want.Lines {
		i := lines[k]
		got := j.Lines[i]
		if strings.TrimSpace(got) != wl.Text {
			t.Errorf("line %d: %q, want %q", i, strings.TrimSpace(got), wl.Text)
		}
		lead := len(got) - len(strings.TrimLeft(got, " "))
		w := columns(wl.Text) * max(wl.Width, 1)
		switch wl.Align {
		case "center":
			if d := lead - (cols-w)/2; d < -1 || d > 1 {
				t.Errorf("line %q centred %d columns in, want about %d", wl.Text, lead, (cols-w)/2)
			}
		case "right":
			if lead+w != cols {
				t.Errorf("line %q right-aligned ends at column %d, want %d", wl.Text, lead+w, cols)
			}
		default:
			if lead != 0 {
				t.Errorf("line %q starts at column %d, want 0", wl.Text, lead)
			}
		}
		var got2 []Span
		for _, s := range j.Spans {
			if s.Line == i {
				got2 = append(got2, s)
			}
		}
		var want2 []Span
		if wl.Bold || wl.Underline || wl.Width > 1 || wl.Height > 1 {
			want2 = append(want2, Span{Line: i, Col: lead, Text: wl.Text, Bold: wl.Bold, Underline: wl.Underline, Width: max(wl.Width, 1), Height: max(wl.Height, 1)})
		}
		col := lead
		for _, r := range wl.Runs {
			if r.Width > 1 {
				want2 = append(want2, Span{Line: i, Col: col, Text: r.Text, Width: r.Width, Height: 1})
			}
			col += columns(r.Text) * max(r.Width, 1)
		}
		if !equalSpans(got2, want2) {
			t.Errorf("line %q: spans %+v, want %+v", wl.Text, got2, want2)
		}
	}

	// Images: where the client put them, dot for dot the client's pattern.
	if got, n := len(j.Images), len(want.Images); got != n {
		t.Fatalf("%d images %+v, want %d", got, j.Images, n)
	}
	for k, wi := range want.Images {
		im := j.Images[k]
		if im.Kind != wi.Mode || im.Width != wi.Width || im.Height != wi.Height {
			t.Errorf("image %d: %s %dx%d, want %s %dx%d", k, im.Kind, im.Width, im.Height, wi.Mode, wi.Width, wi.Height)
			continue
		}
		wantX := 0
		if wi.Align == "center" {
			wantX = (widthDots - wi.Width) / 2
		}
		if im.X != wantX {
			t.Errorf("image %d at x %d, want %d", k, im.X, wantX)
		}
		sx, sy := max(wi.ScaleX, 1), max(wi.ScaleY, 1)
		sw, sh := wi.SourceWidth, wi.SourceHeight
		if sw == 0 {
			sw, sh = wi.Width, wi.Height
		}
		bad := 0
		for y := range im.Height {
			for x := range im.Width {
				black := paper.GrayAt(im.X+x, im.Y+y).Y < 0x80
				px, py := x/sx, y/sy
				if want := px < sw && py < sh && (px/3+2*(py/5))%3 == 0; black != want {
					bad++
				}
			}
		}
		if bad > 0 {
			t.Errorf("image %d: %d of %d dots differ from the client's pattern", k, bad, im.Width*im.Height)
		}
	}

	// QR codes: listed, and readable on the paper.
	if got, w := strings.Join(j.QR, "|"), strings.Join(want.QR, "|"); got != w {
		t.Errorf("QR %q, want %q", got, w)
	}
	if len(want.QR) > 0 {
		if text, err := qr.DecodeImage(paper); err != nil || text != want.QR[0] {
			t.Errorf("QR on the paper: %q, %v; want %q", text, err, want.QR[0])
		}
	}

	// Barcodes: listed with their data, and bars on the paper that a reader decodes to it.
	if got, n := len(j.Barcodes), len(want.Barcodes); got != n {
		t.Fatalf("%d barcodes %+v, want %d", got, j.Barcodes, n)
	}
	for k, wb := range want.Barcodes {
		bc := j.Barcodes[k]
		if bc.Type != wb.Type || bc.Data != wb.Data {
			t.Errorf("barcode %d: %s %q, want %s %q", k, bc.Type, bc.Data, wb.Type, wb.Data)
			continue
		}
		module := cmp.Or(wb.Module, 3)
		if bc.Height != 60 || bc.Width%module != 0 || bc.HRI != "below" { // GS h 60, GS w, GS H 2
			t.Errorf("barcode %d: %+v, want 60 dots high, modules of %d dots, text below", k, bc, module)
		}
		if got, err := readBarcode(paper, bc); err != nil || got != wb.Data {
			t.Errorf("barcode %d (%s) read from the paper: %q, %v; want %q", k, wb.Type, got, err, wb.Data)
		}
	}
}

func equalSpans(a, b []Span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func readPaper(t *testing.T, path string) *image.Gray {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	g := image.NewGray(img.Bounds())
	draw.Draw(g, g.Rect, img, img.Bounds().Min, draw.Src)
	return g
}

// readBarcode decodes the bars of bc on the paper with gozxing's reader for its
// symbology, the bars cut out with a quiet zone around them.
func readBarcode(paper *image.Gray, bc Barcode) (string, error) {
	const quiet = 48
	img := blankImage(bc.Width+2*quiet, bc.Height+2*quiet)
	draw.Draw(img, image.Rect(quiet, quiet, quiet+bc.Width, quiet+bc.Height), paper, image.Pt(bc.X, bc.Y), draw.Src)
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_RETURN_CODABAR_START_END: true}
	var r gozxing.Reader
	switch bc.Type {
	case "UPC-A":
		r = oned.NewUPCAReader()
	case "UPC-E":
		r = oned.NewUPCEReader()
	case "EAN13":
		r = oned.NewEAN13Reader()
	case "EAN8":
		r = oned.NewEAN8Reader()
	case "CODE39":
		r = oned.NewCode39Reader()
	case "ITF":
		r = oned.NewITFReader()
	case "CODABAR":
		r = oned.NewCodaBarReader()
	case "CODE93":
		r = oned.NewCode93Reader()
	default:
		r = oned.NewCode128Reader()
	}
	res, err := r.Decode(bmp, hints)
	if err != nil {
		return "", err
	}
	return res.GetText(), nil
}
