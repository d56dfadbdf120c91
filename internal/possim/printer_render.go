package possim

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"

	"github.com/posagent/posagent/qr"
)

// Span is a run of printed text in one print mode other than the plain one.
type Span struct {
	Line      int    `json:"line"` // index in PrintJob.Lines
	Col       int    `json:"col"`  // first column (font A) of the run on the paper
	Text      string `json:"text"`
	Bold      bool   `json:"bold"`
	Underline bool   `json:"underline"`
	Width     int    `json:"width"`  // width multiplier, 1–8
	Height    int    `json:"height"` // height multiplier, 1–8
}

// Barcode is a GS k symbol as printed.
type Barcode struct {
	Type string `json:"type"` // UPC-A, UPC-E, EAN13, EAN8, CODE39, ITF, CODABAR, CODE93, CODE128
	Data string `json:"data"` // what it holds (check digit included; CODE128 without the {A/{B/{C code-set prefixes)
	HRI  string `json:"hri"`  // the human-readable text: none, above, below or both
	// The bars on the PNG, in dots.
	X      int `json:"x"`
	Y      int `json:"y"`
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Image is a bit image, raster or graphics as printed.
type Image struct {
	Kind   string `json:"kind"` // column (ESC *), raster (GS v 0) or graphics (GS ( L)
	X      int    `json:"x"`
	Y      int    `json:"y"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
	QR     string `json:"qr,omitempty"` // the QR code it shows, if it is one
}

// Layout of the PNG: font A cells of 12×24 dots, a margin above and below.
const cellW, cellH, paperMargin = 12, 24, 8

var hriName = [4]string{"none", "above", "below", "both"}

// render fills the job's summary (lines, spans, codes, text) from its elements and
// returns the paper: one pixel per dot, images and codes as printed, text as one box per
// character cell (black for bold, grey otherwise; underlined cells with a line under
// them), each as wide and tall as its character size.
func (j *PrintJob) render(widthDots int) *image.Gray {
	return j.renderWith(widthDots, true)
}

// maxPaperRows bounds the PNG's length (64 Ki rows, 36 MiB at 576 dots); what a job prints
// beyond it is listed in the text but not drawn.
const maxPaperRows = 1 << 16

// renderWith is render, with (qrs) or without the QR work: decoding images and drawing
// native QR codes (a fuzz target leaves it to package qr's own fuzzing).
func (j *PrintJob) renderWith(widthDots int, qrs bool) *image.Gray {
	cols := max(widthDots/cellW, 1)
	type box struct {
		r    image.Rectangle
		gray uint8
	}
	type placed struct {
		img  image.Image
		x, y int
	}
	var boxes []box
	var items []placed
	var txt strings.Builder
	y := paperMargin
	offset := func(w int, align byte) int {
		switch align {
		case 1:
			return max((widthDots-w)/2, 0)
		case 2:
			return max(widthDots-w, 0)
		}
		return 0
	}
	// textRow lays out one printed line of cells starting at dot x0 and returns its height.
	textRow := func(l []cell, x0 int) int {
		lineH := cellH
		for _, c := range l {
			lineH = max(lineH, cellH*max(c.hmul, 1))
		}
		x := x0
		for _, c := range l {
			cw, ch := c.width()*cellW, cellH*max(c.hmul, 1)
			if c.r != ' ' {
				g := uint8(0x90)
				if c.bold {
					g = 0
				}
				boxes = append(boxes, box{image.Rect(x+1, y+lineH-ch+3, x+cw-1, y+lineH-3), g})
			}
			if c.ul {
				boxes = append(boxes, box{image.Rect(x, y+lineH-2, x+cw, y+lineH), 0})
			}
			x += cw
		}
		return lineH
	}
	for _, e := range j.elems {
		switch e.kind {
		case elemText:
			bold, tall, w := false, false, 0
			for _, c := range e.cells {
				bold = bold || c.bold
				tall = tall || c.hmul > 1
				w += c.width()
			}
			if bold {
				j.Bold++
			}
			if tall {
				j.Tall++
			}
			if w > cols {
				j.Overflow++
			}
			for _, l := range wrapCells(e.cells, cols) {
				s, pad := alignText(l, cols, e.align)
				j.Spans = append(j.Spans, spans(l, len(j.Lines), pad)...)
				j.Lines = append(j.Lines, s)
				txt.WriteString(s + "\n")
				y += textRow(l, pad*cellW)
			}
		case elemRaster:
			j.Rasters++
			im := Image{Kind: e.imgKind, X: offset(e.img.Rect.Dx(), e.align), Y: y, Width: e.img.Rect.Dx(), Height: e.img.Rect.Dy()}
			// Joined bands: the decode happens on the whole image.
			fmt.Fprintf(&txt, "[%s %dx%d", im.Kind, im.Width, im.Height)
			if qrs {
				if text, err := qr.DecodeImage(e.img); err == nil {
					im.QR = text
					j.QR = append(j.QR, text)
					fmt.Fprintf(&txt, " qr: %q", text)
				}
			}
			txt.WriteString("]\n")
			j.Images = append(j.Images, im)
			items = append(items, placed{e.img, im.X, y})
			y += im.Height
		case elemQR:
			j.QR = append(j.QR, string(e.qrData))
			fmt.Fprintf(&txt, "[qr native module %d: %q]\n", e.qrModule, e.qrData)
			if !qrs {
				y += cellH
				continue
			}
			code, err := qr.Encode(string(e.qrData), qr.EncodeOptions{})
			if err != nil {
				y += cellH
				continue
			}
			img := code.Image(max(e.qrModule, 1), 0)
			items = append(items, placed{img, offset(img.Rect.Dx(), e.align), y})
			y += img.Rect.Dy() + cellH/2
		case elemBarcode:
			bc := e.bc
			bars, _ := bc.bars() // checked when the barcode was read
			w := len(bars) * bc.module
			if w > widthDots {
				// A printer does not print a barcode wider than the paper.
				j.Unknown = append(j.Unknown, fmt.Sprintf("GS k %s %q: %d dots wide, wider than the paper", bc.sym, bc.data, w))
				continue
			}
			x := offset(w, e.align)
			hri := make([]cell, 0, len(bc.data))
			for _, r := range bc.data {
				hri = append(hri, cell{r: r, cols: 1, wmul: 1, hmul: 1})
			}
			hriX := x + max((w-len(hri)*cellW)/2, 0)
			if bc.hri&1 != 0 {
				y += textRow(hri, hriX)
			}
			j.Barcodes = append(j.Barcodes, Barcode{Type: bc.sym, Data: bc.data, HRI: hriName[bc.hri&3], X: x, Y: y, Width: w, Height: bc.height})
			fmt.Fprintf(&txt, "[barcode %s: %q]\n", bc.sym, bc.data)
			for i, on := range bars {
				if on {
					boxes = append(boxes, box{image.Rect(x+i*bc.module, y, x+(i+1)*bc.module, y+bc.height), 0})
				}
			}
			y += bc.height
			if bc.hri&2 != 0 {
				y += textRow(hri, hriX)
			}
		case elemCut:
			j.Cuts++
			txt.WriteString("[cut]\n")
			boxes = append(boxes, box{image.Rect(0, y+cellH/2, widthDots, y+cellH/2+1), 0x40})
			y += cellH
		case elemDrawer:
			j.Drawer++
			txt.WriteString("[drawer]\n")
		case elemFeed:
			for range min(e.lines, 20) {
				txt.WriteString("\n")
			}
			y += cellH * min(e.lines, 20)
		case elemPaperOut:
			txt.WriteString("[" + j.Stopped + ": the rest of the job was not printed]\n")
			boxes = append(boxes, box{image.Rect(0, y+cellH/2, widthDots, y+cellH/2+1), 0x40})
			y += cellH
		}
	}
	j.Text = txt.String()
	out := image.NewGray(image.Rect(0, 0, widthDots, min(y+paperMargin, maxPaperRows)))
	draw.Draw(out, out.Rect, image.NewUniform(color.Gray{Y: 0xFF}), image.Point{}, draw.Src)
	for _, b := range boxes {
		draw.Draw(out, b.r, image.NewUniform(color.Gray{Y: b.gray}), image.Point{}, draw.Src)
	}
	for _, it := range items {
		r := it.img.Bounds()
		draw.Draw(out, image.Rect(it.x, it.y, it.x+r.Dx(), it.y+r.Dy()), it.img, r.Min, draw.Src)
	}
	return out
}

// spans returns the runs of a printed line in a print mode other than the plain one.
func spans(l []cell, line, pad int) []Span {
	var out []Span
	col := pad
	for i := 0; i < len(l); {
		c := l[i]
		k := i
		var b strings.Builder
		start := col
		for ; k < len(l) && l[k].bold == c.bold && l[k].ul == c.ul && l[k].wmul == c.wmul && l[k].hmul == c.hmul; k++ {
			b.WriteRune(l[k].r)
			col += l[k].width()
		}
		if c.bold || c.ul || c.wmul > 1 || c.hmul > 1 {
			out = append(out, Span{Line: line, Col: start, Text: b.String(), Bold: c.bold, Underline: c.ul, Width: max(c.wmul, 1), Height: max(c.hmul, 1)})
		}
		i = k
	}
	return out
}

// wrapCells splits a line the way a printer does when it is wider than the paper.
func wrapCells(cells []cell, cols int) [][]cell {
	var out [][]cell
	var cur []cell
	w := 0
	for _, c := range cells {
		cw := c.width()
		if w+cw > cols && len(cur) > 0 {
			out = append(out, cur)
			cur, w = nil, 0
		}
		cur = append(cur, c)
		w += cw
	}
	return append(out, cur)
}

// alignText returns a printed line as text, aligned in the paper's columns (no trailing
// spaces), and the columns of padding before it.
func alignText(cells []cell, cols int, align byte) (string, int) {
	var b strings.Builder
	w := 0
	for _, c := range cells {
		b.WriteRune(c.r)
		w += c.width()
	}
	pad := 0
	switch align {
	case 1:
		pad = max((cols-w)/2, 0)
	case 2:
		pad = max(cols-w, 0)
	}
	return strings.TrimRight(strings.Repeat(" ", pad)+b.String(), " "), pad
}
