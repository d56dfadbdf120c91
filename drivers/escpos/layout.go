package escpos

import (
	"fmt"
	"strings"

	"golang.org/x/text/unicode/norm"

	"github.com/posagent/posagent"
)

// Line is one line of a laid-out receipt. Text never takes more than the profile's
// columns; Align tells where the printer puts it. A line with QR set is the QR code
// instead of text.
type Line struct {
	Text  string
	Align Alignment
	Bold  bool
	Tall  bool // double height (the width stays, so the columns do too)
	QR    string
}

// Layout lays a receipt out for a profile: the header centred (its first line bold and
// tall), then the items, each name wrapped to the width with its quantity, unit price
// and amount under it (a single item's amount on the name's last line when it fits), the
// totals in bold and the payments with amounts aligned right, free lines, the QR code and
// the footer centred. Widths are counted as the printer prints (see charset): in Chinese
// mode a CJK character takes two columns. Long words are broken; nothing is cut off.
func Layout(rc *posagent.Receipt, p *Profile) ([]Line, error) {
	cur, err := posagent.LookupCurrency(rc.Currency)
	if err != nil {
		return nil, fmt.Errorf("lay out receipt: %w", err)
	}
	l := layout{cs: newCharset(p), cols: p.Columns}
	money := func(v int64) string { return posagent.FormatMinor(v, cur.Minor) }

	for i, h := range rc.Header {
		for _, s := range l.wrap(h, l.cols) {
			l.add(Line{Text: s, Align: AlignCenter, Bold: i == 0, Tall: i == 0})
		}
	}
	rule := strings.Repeat("-", l.cols)
	if len(rc.Header) > 0 {
		l.add(Line{Text: rule})
	}
	for _, it := range rc.Items {
		amount := money(it.Amount)
		if it.Quantity == 1 {
			l.leftRight(it.Name, amount, false)
			continue
		}
		for _, s := range l.wrap(it.Name, l.cols) {
			l.add(Line{Text: s})
		}
		l.leftRight(fmt.Sprintf("  %d x %s", it.Quantity, money(it.UnitPrice)), amount, false)
	}
	if len(rc.Items) > 0 {
		l.add(Line{Text: rule})
	}
	for _, t := range rc.Totals {
		l.leftRight(t.Label, money(t.Amount), true)
	}
	for _, pm := range rc.Payments {
		l.leftRight(pm.Label, money(pm.Amount), false)
	}
	if len(rc.Totals)+len(rc.Payments) > 0 && len(rc.Lines)+len(rc.Footer) > 0 || rc.QR != "" {
		l.add(Line{})
	}
	for _, s := range rc.Lines {
		for _, w := range l.wrap(s, l.cols) {
			l.add(Line{Text: w})
		}
	}
	if rc.QR != "" {
		l.add(Line{QR: rc.QR, Align: AlignCenter})
	}
	for _, f := range rc.Footer {
		for _, s := range l.wrap(f, l.cols) {
			l.add(Line{Text: s, Align: AlignCenter})
		}
	}
	return l.lines, nil
}

type layout struct {
	cs    *charset
	cols  int
	lines []Line
}

func (l *layout) add(ln Line) { l.lines = append(l.lines, ln) }

// leftRight prints label on the left and amount flush right: label wraps in the columns
// left of the amount, whose line is the label's last; an amount too wide for that goes on a
// line of its own.
func (l *layout) leftRight(label, amount string, bold bool) {
	aw := l.cs.width(amount)
	if l.cols-aw-1-(len(label)-len(strings.TrimLeft(label, " "))) < 8 {
		for _, s := range l.wrap(label, l.cols) {
			l.add(Line{Text: s, Bold: bold})
		}
		for _, s := range l.wrap(amount, l.cols) {
			l.add(Line{Text: s, Align: AlignRight, Bold: bold})
		}
		return
	}
	indent := strings.Repeat(" ", len(label)-len(strings.TrimLeft(label, " ")))
	parts := l.wrap(label, l.cols-aw-1-len(indent))
	for i := range parts {
		parts[i] = indent + parts[i]
	}
	for _, s := range parts[:len(parts)-1] {
		l.add(Line{Text: s, Bold: bold})
	}
	last := parts[len(parts)-1]
	pad := l.cols - l.cs.width(last) - aw
	l.add(Line{Text: last + strings.Repeat(" ", pad) + amount, Bold: bold})
}

// wrap breaks s into lines of at most cols columns: at spaces when it can, between CJK
// characters (which may break anywhere), and inside a word too long for a line.
func (l *layout) wrap(s string, cols int) []string {
	s = strings.TrimSpace(norm.NFC.String(s))
	if s == "" {
		return []string{""}
	}
	var out []string
	var line []rune
	var widths []int
	w := 0
	brk := -1 // index in line where a break may go (the line is cut before it)
	for _, r := range s {
		rw := l.cs.runeWidth(r)
		for w+rw > cols && len(line) > 0 {
			cut := len(line) // r starts the next line: fine at a space or next to a CJK character
			if brk > 0 && r != ' ' && rw != 2 && widths[len(widths)-1] != 2 {
				cut = brk
			}
			out = append(out, strings.TrimRight(string(line[:cut]), " "))
			rest := line[cut:]
			restW := widths[cut:]
			for len(rest) > 0 && rest[0] == ' ' {
				rest, restW = rest[1:], restW[1:]
			}
			line = append([]rune(nil), rest...)
			widths = append([]int(nil), restW...)
			w = 0
			for _, x := range widths {
				w += x
			}
			brk = -1
		}
		if r == ' ' && len(line) == 0 && len(out) > 0 {
			continue // no space at the start of a continuation line
		}
		if r == ' ' {
			brk = len(line) + 1
		} else if rw == 2 && len(line) > 0 {
			brk = len(line) // before a wide character
		} else if len(line) > 0 && widths[len(widths)-1] == 2 {
			brk = len(line) // after a wide character
		}
		line = append(line, r)
		widths = append(widths, rw)
		w += rw
	}
	if len(line) > 0 {
		out = append(out, strings.TrimRight(string(line), " "))
	}
	return out
}
