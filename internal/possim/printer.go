package possim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrUnplugged is what Printer.Serve returns after Unplug: the caller closes the port (the
// pty) as a pulled cable would, and serves again on a new one when the printer comes back.
var ErrUnplugged = errors.New("printer unplugged")

// Printer simulates an ESC/POS receipt printer. It reads the byte stream with its own
// parser (not drivers/escpos's), answers DLE EOT 1–4 from its state, and turns each job
// into a PrintJob, written to DIR as printer-job-N.txt and printer-job-N.png.
//
// A job ends at a cut, at ESC @ when something was printed since the last job, or after
// IdleEnd without a byte (printers without a cutter end jobs with a feed only). After a
// cut, bytes that only feed paper (LF, ESC d, ESC J, ESC @, GS V with a feed) are the end
// of that receipt and make no job of their own.
//
// What it prints: text in the print mode of each character (ESC !, GS ! sizes, ESC E
// emphasis, ESC - underline), alignment (ESC a), GB18030 in Chinese mode (FS &, FS .) or
// the code page (ESC t); bit images (ESC * modes 0, 1, 32, 33), rasters (GS v 0) and
// graphics (GS ( L / GS 8 L functions 112, 113 and 50); QR codes (GS ( k); barcodes (GS k,
// functions A and B: UPC-A, UPC-E, EAN13, EAN8, CODE39, ITF, CODABAR, CODE93, CODE128) in
// the height, module width and HRI position of GS h, GS w and GS H; cuts and drawer pulses.
//
// The text file has one line per printed line, aligned in the paper's columns as the
// printer would put it, with bracketed lines for what is not text ("[qr native: …]",
// "[raster 264x264 qr: …]", "[column 96x48]", "[graphics 10x2]", "[barcode EAN13:
// "4006381333931"]", "[cut]", "[drawer]", "[paper out: …]"). The PNG is the paper, one
// pixel per dot: images, QR codes and barcodes exactly as printed (a phone or
// qr.DecodeFile reads the QR codes, a barcode reader the bars), text as one box per
// character cell (black for bold, grey otherwise, a line under underlined ones; each cell
// as wide and tall as its character size; Chinese characters two cells wide) because the
// module set has no font. The text file is the record of the text; the PNG of the layout
// and the images; the PrintJob lists both (Spans, Barcodes, Images).
//
// The zero value is not usable; use NewPrinter. Set the exported fields before Serve.
type Printer struct {
	// WidthDots is the paper's printable width (576, 80 mm, by default; 384 for 58 mm).
	// Columns are WidthDots/12 (font A).
	WidthDots int
	// IdleEnd ends a job after this long without a byte (default 300 ms).
	IdleEnd time.Duration
	// Chinese is the printer's state at power-on: double-byte (GB18030) Chinese mode on, as
	// Chinese-market printers start (FS & and FS . switch it; ESC @ keeps it). CodePage is
	// the ESC t table at power-on and after ESC @. SetProfile sets both and WidthDots.
	Chinese  bool
	CodePage byte

	dir string

	mu        sync.Mutex
	cond      *sync.Cond
	nearEnd   bool
	paperOut  bool
	offline   bool
	coverOpen bool
	silent    bool
	runOut    int  // lines until the paper runs out; 0 = never
	afterCut  bool // the last job ended with a cut
	unplug    chan struct{}
	jobs      []*PrintJob
	cur       *PrintJob
	bytesIn   int64
}

// NewPrinter returns a printer with paper, online, writing jobs to dir ("" for none).
func NewPrinter(dir string) *Printer {
	p := &Printer{dir: dir, WidthDots: 576, IdleEnd: 300 * time.Millisecond, unplug: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// PrintJob is one job as the simulated printer printed it.
type PrintJob struct {
	N       int      `json:"n"`       // 1, 2, … in the order printed
	Lines   []string `json:"lines"`   // the printed text lines, aligned in the columns (no trailing spaces)
	QR      []string `json:"qr"`      // QR contents: stored with GS ( k, or decoded from a raster image
	Rasters int      `json:"rasters"` // images: GS v 0, ESC * and GS ( L (consecutive bands of one width are one image)
	Cuts    int      `json:"cuts"`
	Drawer  int      `json:"drawer"` // drawer pulses
	// Truncated means the printer stopped in the job (paper out, cover open, offline):
	// what came after Stopped was not printed.
	Truncated bool   `json:"truncated"`
	Stopped   string `json:"stopped"`
	// Overflow counts text lines wider than the paper, which the printer wrapped.
	Overflow int `json:"overflow"`
	// Bold counts printed lines with at least one bold character; Tall, double-height lines.
	Bold int `json:"bold"`
	Tall int `json:"tall"`
	// Spans are the runs of printed text in a print mode other than the plain one:
	// bold, underlined, or enlarged (GS ! / ESC !), each applied per character.
	Spans []Span `json:"spans"`
	// Barcodes are the GS k symbols printed, in order; Images the bit images (ESC *),
	// rasters (GS v 0) and graphics (GS ( L), each where it is on the PNG.
	Barcodes []Barcode `json:"barcodes"`
	Images   []Image   `json:"images"`
	// Unknown lists the byte sequences the parser did not understand.
	Unknown []string `json:"unknown"`
	Text    string   `json:"text"`  // the .txt rendering
	Bytes   int      `json:"bytes"` // bytes received for the job, status requests included

	elems []*element
	dots  int // raster dots so far
}

// PaperNearEnd sets the paper near-end sensor (a warning; printing goes on).
func (p *Printer) PaperNearEnd(on bool) { p.set(func() { p.nearEnd = on }) }

// PaperOut sets the paper-end sensor: the printer goes offline and prints nothing.
func (p *Printer) PaperOut(on bool) {
	p.set(func() {
		p.paperOut = on
		if !on {
			p.runOut = 0
		}
	})
}

// RunOutAfter makes the paper run out after n more printed lines (raster rows count as
// lines of 24 dots): for paper-out in the middle of a job.
func (p *Printer) RunOutAfter(n int) { p.set(func() { p.runOut = max(n, 1) }) }

// Offline takes the printer offline without a cause (DLE EOT 1 bit 3 only), as a printer
// in an error state that it does not report does.
func (p *Printer) Offline(on bool) { p.set(func() { p.offline = on }) }

// CoverOpen opens or closes the cover; open, the printer is offline.
func (p *Printer) CoverOpen(on bool) { p.set(func() { p.coverOpen = on }) }

// Silent stops the printer answering status requests (a printer without status support,
// or a device that is not a printer), while it still prints.
func (p *Printer) Silent(on bool) { p.set(func() { p.silent = on }) }

// Unplug makes Serve return ErrUnplugged at once; Serve may be called again afterwards
// (the printer coming back, with its state and jobs kept).
func (p *Printer) Unplug() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.unplug)
	p.unplug = make(chan struct{})
}

func (p *Printer) set(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
}

// Jobs returns the jobs finished so far.
func (p *Printer) Jobs() []*PrintJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*PrintJob(nil), p.jobs...)
}

// WaitJob waits until job n (1-based) is finished and returns it.
func (p *Printer) WaitJob(ctx context.Context, n int) (*PrintJob, error) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.cond.Broadcast()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.jobs) < n {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("wait for printer job %d: %w", n, err)
		}
		p.cond.Wait()
	}
	return p.jobs[n-1], nil
}

// Serve reads ESC/POS from rw and prints it until ctx is done (returns ctx.Err()), Unplug
// is called (ErrUnplugged) or rw fails. A pty master reads EIO while nobody has the other
// side open; Serve waits for a client then. Serve reads rw from a goroutine of its own,
// which ends when rw's Read fails: the caller closes rw after Serve returns.
func (p *Printer) Serve(ctx context.Context, rw io.ReadWriter) error {
	p.mu.Lock()
	unplug := p.unplug
	p.mu.Unlock()

	data := make(chan []byte)
	readErr := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			buf := make([]byte, 4096)
			n, err := rw.Read(buf)
			if n > 0 {
				select {
				case data <- buf[:n]:
				case <-done:
					return
				}
			}
			if errors.Is(err, syscall.EIO) {
				select {
				case <-time.After(20 * time.Millisecond):
					continue
				case <-done:
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	src := &chanSource{ctx: ctx, data: data, readErr: readErr, unplug: unplug, idle: p.IdleEnd, count: p.countIn}
	pr := p.newParser(src)
	pr.answer = func(n byte) {
		if b, ok := p.statusByte(n); ok {
			rw.Write([]byte{b}) //nolint:errcheck // a failed answer is a printer that does not answer
		}
	}
	pr.emit = p.emit
	pr.boundary = p.endJob
	pr.unknown = p.addUnknown
	err := pr.run()
	p.endJob()
	return err
}

func (p *Printer) addUnknown(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.current()
	if len(j.Unknown) < 100 {
		j.Unknown = append(j.Unknown, s)
	}
}

func (p *Printer) countIn(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytesIn += int64(n)
	p.current().Bytes += n // the bytes that start a job count in it
}

// statusByte answers DLE EOT n from the state.
func (p *Printer) statusByte(n byte) (byte, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.silent {
		return 0, false
	}
	b := byte(0x12)
	switch n {
	case 1:
		if p.paperOut || p.coverOpen || p.offline {
			b |= 0x08
		}
	case 2:
		if p.coverOpen {
			b |= 0x04
		}
		if p.paperOut {
			b |= 0x20
		}

	case 3:
	case 4:
		if p.nearEnd || p.paperOut {
			b |= 0x0C
		}
		if p.paperOut {
			b |= 0x60
		}
	default:
		return 0, false
	}
	return b, true
}

// current returns the job being received, starting one. p.mu is held.
func (p *Printer) current() *PrintJob {
	if p.cur == nil {
		p.cur = &PrintJob{}
	}
	return p.cur
}

// emit prints an element, unless the printer cannot print.
func (p *Printer) emit(e *element) {
	p.mu.Lock()
	defer p.mu.Unlock()
	j := p.current()
	if p.paperOut || p.coverOpen || p.offline {
		if !j.Truncated {
			j.Truncated = true
			j.Stopped = p.stateString()
			j.elems = append(j.elems, &element{kind: elemPaperOut})
		}
		return
	}
	if len(j.elems) >= maxElements {
		return
	}
	if e.kind == elemRaster {
		dots := e.img.Rect.Dx() * e.img.Rect.Dy()
		if j.dots+dots > maxJobDots {
			if len(j.Unknown) < 100 {
				j.Unknown = append(j.Unknown, "raster beyond the job's limit of dots, not printed")
			}
			return
		}
		j.dots += dots
	}
	if last := len(j.elems) - 1; e.kind == elemRaster && e.joinKey != "" && last >= 0 && j.elems[last].kind == elemRaster &&
		j.elems[last].joinKey == e.joinKey && j.elems[last].img.Rect.Dy()+e.img.Rect.Dy() <= maxRasterHeight {
		j.elems[last].img = stack(j.elems[last].img, e.img) // the next band of the same image
	} else {
		j.elems = append(j.elems, e)
	}
	if p.runOut > 0 {
		used := 1
		if e.kind == elemRaster {
			used = (e.img.Rect.Dy() + 23) / 24
		}
		p.runOut -= min(used, p.runOut)
		if p.runOut == 0 {
			p.paperOut = true
		}
	}
	if e.kind == elemCut {
		p.finishCut()
	}
}

func (p *Printer) stateString() string {
	switch {
	case p.paperOut:
		return "paper out"
	case p.coverOpen:
		return "cover open"
	}
	return "offline"
}

// feedOnly reports whether a job only feeds paper (blank lines, feeds) and cuts it: after
// a cut, such bytes (a client's trailing LF, ESC d, ESC J, ESC @, GS V with a feed) are the
// end of the last receipt, not a receipt of their own.
func (j *PrintJob) feedOnly() bool {
	if len(j.Unknown) > 0 {
		return false
	}
	for _, e := range j.elems {
		switch {
		case e.kind == elemFeed, e.kind == elemCut:
		case e.kind == elemText && blankCells(e.cells):
		default:
			return false
		}
	}
	return true
}

func blankCells(cells []cell) bool {
	for _, c := range cells {
		if c.r != ' ' || c.ul {
			return false
		}
	}
	return true
}

// endJob finishes the current job if anything was printed (or refused) in it; after a
// cut, one that only fed paper is dropped.
func (p *Printer) endJob() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || (len(p.cur.elems) == 0 && len(p.cur.Unknown) == 0) {
		return
	}
	if p.afterCut && p.cur.feedOnly() {
		p.cur = nil
		return
	}
	p.afterCut = false
	p.finish()
}

// finishCut ends the job at a cut. p.mu is held.
func (p *Printer) finishCut() {
	if p.afterCut && p.cur.feedOnly() {
		p.cur = nil // a second cut (GS V with a feed) after the receipt's own
		return
	}
	p.afterCut = true
	p.finish()
}

// finish renders the current job, adds it to the list and writes its files. p.mu is held.
func (p *Printer) finish() {
	j := p.cur
	p.cur = nil
	if j == nil {
		return
	}
	j.N = len(p.jobs) + 1
	paper := j.render(p.WidthDots)
	p.jobs = append(p.jobs, j)
	p.cond.Broadcast()
	if p.dir != "" {
		base := filepath.Join(p.dir, fmt.Sprintf("printer-job-%d", j.N))
		os.WriteFile(base+".txt", []byte(j.Text), 0o644) //nolint:errcheck // best effort, a simulator
		var buf bytes.Buffer
		if err := png.Encode(&buf, paper); err == nil {
			os.WriteFile(base+".png", buf.Bytes(), 0o644) //nolint:errcheck
		}
	}
}

// stack returns a above b (of the same width), reusing a's pixels (append amortises the
// copies when an image comes in many bands).
func stack(a, b *image.Gray) *image.Gray {
	return &image.Gray{
		Pix:    append(a.Pix, b.Pix...),
		Stride: a.Stride,
		Rect:   image.Rect(0, 0, a.Rect.Dx(), a.Rect.Dy()+b.Rect.Dy()),
	}
}

// chanSource feeds the parser from Serve's reader goroutine.
type chanSource struct {
	ctx     context.Context
	data    <-chan []byte
	readErr <-chan error
	unplug  <-chan struct{}
	idle    time.Duration
	count   func(int)
	buf     []byte
}

func (s *chanSource) next(boundary bool) (byte, error) {
	for len(s.buf) == 0 {
		var idle <-chan time.Time
		if boundary && s.idle > 0 {
			t := time.NewTimer(s.idle)
			defer t.Stop()
			idle = t.C
		}
		select {
		case b := <-s.data:
			s.buf = b
			s.count(len(b))
		case err := <-s.readErr:
			return 0, err
		case <-s.unplug:
			return 0, ErrUnplugged
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		case <-idle:
			boundary = false // one idle per pause
			return 0, errIdle
		}
	}
	b := s.buf[0]
	s.buf = s.buf[1:]
	return b, nil
}

// ParseESCPOS reads a recorded ESC/POS stream as the simulated printer would print it,
// with paper and online, and returns its jobs (the last one ends where the data ends).
// Status requests in the stream are counted in Status; nothing is written anywhere.
func ParseESCPOS(data []byte, widthDots int) (jobs []*PrintJob, status int) {
	p := NewPrinter("")
	if widthDots > 0 {
		p.WidthDots = widthDots
	}
	return p.Parse(data)
}

// Parse reads a recorded ESC/POS stream as this printer (its width, profile and state)
// would print it, as ParseESCPOS does, and returns the jobs printed by it.
func (p *Printer) Parse(data []byte) (jobs []*PrintJob, status int) {
	before := len(p.Jobs())
	pr := p.newParser(&sliceSource{data: data})
	pr.answer = func(byte) { status++ }
	pr.emit = p.emit
	pr.boundary = p.endJob
	pr.unknown = p.addUnknown
	pr.run() //nolint:errcheck // ends with io.EOF or io.ErrUnexpectedEOF
	p.endJob()
	return p.Jobs()[before:], status
}

// newParser returns a parser in the printer's power-on state.
func (p *Printer) newParser(src byteSource) *parser {
	pr := newParser(src)
	p.mu.Lock()
	pr.chinese, pr.bootPage = p.Chinese, p.CodePage
	p.mu.Unlock()
	pr.reset()
	return pr
}

// sliceSource feeds the parser from a byte slice.
type sliceSource struct {
	data []byte
}

func (s *sliceSource) next(boundary bool) (byte, error) {
	if len(s.data) == 0 {
		if boundary {
			return 0, io.EOF
		}
		return 0, io.ErrUnexpectedEOF
	}
	b := s.data[0]
	s.data = s.data[1:]
	return b, nil
}
