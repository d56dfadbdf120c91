package escpos

import (
	"strings"
	"testing"

	"github.com/posagent/posagent"
)

func TestLayout_Widths(t *testing.T) {
	for _, name := range ProfileNames("") {
		t.Run(name, func(t *testing.T) {
			p := mustProfile(t, name)
			lines, err := Layout(sampleReceipt(t), p)
			if err != nil {
				t.Fatal(err)
			}
			cs := newCharset(p)
			for i, ln := range lines {
				if w := cs.width(ln.Text); w > p.Columns {
					t.Errorf("line %d %q is %d columns, paper has %d", i, ln.Text, w, p.Columns)
				}
			}
		})
	}
}

func TestLayout_AmountsRightAligned(t *testing.T) {
	p := mustProfile(t, "generic-58")
	lines, err := Layout(sampleReceipt(t), p)
	if err != nil {
		t.Fatal(err)
	}
	cs := newCharset(p)
	var got []string
	for _, ln := range lines {
		got = append(got, ln.Text)
	}
	text := strings.Join(got, "\n")
	for _, want := range []string{"6.00", "15.90", "-3.00", "65.90", "7.58"} {
		found := false
		for _, ln := range lines {
			if strings.HasSuffix(ln.Text, " "+want) && cs.width(ln.Text) == p.Columns {
				found = true
			}
		}
		if !found {
			t.Errorf("no line ends with %s at column %d:\n%s", want, p.Columns, text)
		}
	}
}

func TestLayout_CJKCountsTwo(t *testing.T) {
	p := mustProfile(t, "generic-58") // 32 columns, Chinese mode
	rc := &posagent.Receipt{Currency: "CNY", Items: []posagent.ReceiptItem{
		// 14 ideographs = 28 columns: with " 12.00" the line would be 34 columns.
		{Name: "一二三四五六七八九十一二三四", Quantity: 1, UnitPrice: 1200, Amount: 1200},
	}}
	lines, err := Layout(rc, p)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{lines[0].Text, lines[1].Text}
	// The name wraps in the 26 columns left of " 12.00": 13 ideographs.
	want := []string{"一二三四五六七八九十一二三", "四                         12.00"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestLayout_Wrap(t *testing.T) {
	l := layout{cs: newCharset(mustProfile(t, "generic-58")), cols: 10}
	tests := []struct {
		in   string
		want []string
	}{
		{"hello world again", []string{"hello", "world", "again"}},
		{"abcdefghijklmno", []string{"abcdefghij", "klmno"}},
		{"矿泉水 Water 550ml", []string{"矿泉水", "Water", "550ml"}},
		{"ab矿泉水矿泉水", []string{"ab矿泉水矿", "泉水"}},
		{"   ", []string{""}},
		{"a  b", []string{"a  b"}},
	}
	for _, tt := range tests {
		got := l.wrap(tt.in, l.cols)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("wrap(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCharset_Glyphs(t *testing.T) {
	cn := newCharset(mustProfile(t, "generic-58"))
	ep := newCharset(mustProfile(t, "epson-tm-t88"))
	tests := []struct {
		cs        *charset
		in        string
		wantBytes string
		wantCols  int
	}{
		{cn, "A水", "A\xcb\xae", 3},
		{cn, "😀", "?", 1},              // four-byte GB18030: not in printer fonts
		{cn, "e\u0301", "\xa8\xa6", 2}, // NFC é, GB2312 pinyin é
		{ep, "Café €", "Caf\x82 \xd5", 6},
		{ep, "水", "?", 1},
		{ep, "a\u200bb", "ab", 2},
	}
	for _, tt := range tests {
		var b []byte
		cols := 0
		for _, g := range tt.cs.glyphs(tt.in) {
			b = append(b, g.b...)
			cols += g.cols
		}
		if string(b) != tt.wantBytes || cols != tt.wantCols {
			t.Errorf("glyphs(%q) = %q, %d cols; want %q, %d", tt.in, b, cols, tt.wantBytes, tt.wantCols)
		}
	}
}

func TestLoadProfile(t *testing.T) {
	for _, name := range []string{"generic-58", "generic-80", "epson-tm-t88", "xprinter-xp58"} {
		if _, err := LoadProfile(name, ""); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadProfile("nope", ""); err == nil || !strings.Contains(err.Error(), "generic-58") {
		t.Errorf("unknown profile: %v, want an error listing the known ones", err)
	}
	if _, err := LoadProfile("../etc/passwd", ""); err == nil {
		t.Error("a path as a profile name was accepted")
	}
}
