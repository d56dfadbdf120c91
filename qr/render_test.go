package qr

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/posagent/posagent"
)

// Payloads shared by the render, decode and zbar tests: EMV MPM codes as wallets see them.
const (
	// The EMVCo MPM specification's example, Chinese alternate-language template included.
	payloadEMVChinese = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678" +
		"520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.72" +
		"53031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A"
	// The same without the template 64: pure ASCII.
	payloadEMVASCII = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678" +
		"520441115802CN5914BEST TRANSPORT6007BEIJING540523.72" +
		"53031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304FF8B"
	// A Thai PromptPay-style code with a Thai merchant name (combining marks included).
	payloadEMVThai = "00020101021229370016A000000677010111011300668123456785802TH5303764540510.00" +
		"5912ร้านกาแฟดีดี6007BANGKOK63045B07"
)

// zxingDecode reads a clean rendering with gozxing and no hints, so that only what is in
// the code (ECI included) decides the character set. It returns the result's metadata too.
func zxingDecode(t *testing.T, img image.Image) *gozxing.Result {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]interface{}{
		gozxing.DecodeHintType_PURE_BARCODE: true,
	})
	if err != nil {
		t.Fatalf("gozxing cannot read the rendering: %v", err)
	}
	return res
}

func TestEncode_ECI(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantECI bool
	}{
		{"ascii", "HELLO WORLD", false},
		{"emv-ascii", payloadEMVASCII, false},
		{"emv-chinese", payloadEMVChinese, true},
		{"emv-thai", payloadEMVThai, true},
		{"chinese", "最佳运输北京", true},
		{"kanji-only", "日本語", true}, // a Shift_JIS guesser's favourite
		{"emoji", "💳✅", true},
		{"latin1", "café", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Encode(tt.text, EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.ECI, tt.wantECI; got != want {
				t.Errorf("ECI = %v, want %v", got, want)
			}
			res := zxingDecode(t, c.Image(2, QuietZone))
			if got, want := res.GetText(), tt.text; got != want {
				t.Errorf("decoded %q, want %q", got, want)
			}
			// "]Q2" is the AIM symbology identifier of a QR code with an ECI designator.
			sym := res.GetResultMetadata()[gozxing.ResultMetadataType_SYMBOLOGY_IDENTIFIER]
			if got, want := sym == "]Q2", tt.wantECI; got != want {
				t.Errorf("symbology identifier %v: ECI present = %v, want %v", sym, got, want)
			}
			if !tt.wantECI {
				return
			}
			// All of the text in one Byte-mode segment: the only byte segment holds every
			// byte of the UTF-8 text (numeric or alphanumeric segments would hold some).
			segs, _ := res.GetResultMetadata()[gozxing.ResultMetadataType_BYTE_SEGMENTS].([][]byte)
			if len(segs) != 1 || !bytes.Equal(segs[0], []byte(tt.text)) {
				t.Errorf("byte segments %q, want exactly one holding %q", segs, tt.text)
			}
		})
	}
}

func TestEncode_Level(t *testing.T) {
	zxLevels := map[Level]string{LevelL: "L", LevelM: "M", LevelQ: "Q", LevelH: "H"}
	for _, text := range []string{"HELLO", payloadEMVASCII, payloadEMVChinese} {
		for lvl, want := range zxLevels {
			c, err := Encode(text, EncodeOptions{Level: lvl})
			if err != nil {
				t.Fatal(err)
			}
			if c.Level != lvl {
				t.Errorf("%.10q at %v: Level = %v", text, lvl, c.Level)
			}
			if got, want := c.Size(), 17+4*c.Version; got != want {
				t.Errorf("%.10q at %v: Size() = %d for version %d, want %d", text, lvl, got, c.Version, want)
			}
			res := zxingDecode(t, c.Image(2, QuietZone))
			if got := res.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL]; got != want {
				t.Errorf("%.10q at %v: the code says level %v", text, lvl, got)
			}
		}
	}
}

// TestEncode_AutoLevel checks the automatic level against the versions that forced levels
// give for the same text, for texts of many lengths and both encoders.
func TestEncode_AutoLevel(t *testing.T) {
	rule := func(version map[Level]int) Level {
		for _, l := range []Level{LevelH, LevelQ, LevelM} {
			if v, ok := version[l]; ok && v <= 10 {
				return l
			}
		}
		if v, ok := version[LevelM]; ok && v <= 25 {
			return LevelM
		}
		return LevelL
	}
	seen := map[Level]bool{}
	for _, unit := range []string{"A1", "ab", "最"} {
		// Up to 1400 bytes: level L is chosen from about 700 (M beyond version 25).
		for n := 1; n*len(unit) <= 1400; n = n*2 + 1 {
			text := strings.Repeat(unit, n)
			version := map[Level]int{}
			for _, l := range []Level{LevelL, LevelM, LevelQ, LevelH} {
				if c, err := Encode(text, EncodeOptions{Level: l}); err == nil {
					version[l] = c.Version
				}
			}
			if len(version) == 0 {
				break // too long for any level
			}
			c, err := Encode(text, EncodeOptions{})
			if err != nil {
				t.Fatalf("%d×%q: %v", n, unit, err)
			}
			if got, want := c.Level, rule(version); got != want {
				t.Errorf("%d×%q: level %v, want %v (versions by level: %v)", n, unit, got, want, version)
			}
			if got, want := c.Version, version[c.Level]; got != want {
				t.Errorf("%d×%q: version %d, want %d", n, unit, got, want)
			}
			seen[c.Level] = true
		}
	}
	if len(seen) != 4 {
		t.Errorf("the texts exercised levels %v, want all four", seen)
	}
}

func TestEncode_Refuses(t *testing.T) {
	tests := []struct {
		name string
		text string
		opts EncodeOptions
	}{
		{"empty", "", EncodeOptions{}},
		{"invalid-utf8", "ab\xffcd", EncodeOptions{}},
		{"unknown-level", "HELLO", EncodeOptions{Level: LevelH + 1}},
		{"negative-level", "HELLO", EncodeOptions{Level: -1}},
		{"too-long-bytes", strings.Repeat("a", 2954), EncodeOptions{}},
		{"too-long-digits", strings.Repeat("7", 7090), EncodeOptions{}},
		{"too-long-alphanumeric", strings.Repeat("Z", 4297), EncodeOptions{}},
		{"too-long-utf8", strings.Repeat("é", 1477), EncodeOptions{}},
		{"too-long-at-H", strings.Repeat("a", 1274), EncodeOptions{Level: LevelH}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Encode(tt.text, tt.opts)
			if err == nil {
				t.Fatalf("Encode = version %d, want an error", c.Version)
			}
			if !errors.Is(err, posagent.ErrInvalidInput) {
				t.Errorf("error %q does not wrap ErrInvalidInput", err)
			}
			if !strings.HasPrefix(err.Error(), "encode qr: ") {
				t.Errorf("error %q lacks the encode qr: prefix", err)
			}
		})
	}
}

// TestEncode_Capacity encodes texts at the very limits of the largest code.
func TestEncode_Capacity(t *testing.T) {
	for _, text := range []string{
		strings.Repeat("a", 2953),   // byte mode, version 40-L
		strings.Repeat("7", 7089),   // numeric mode
		strings.Repeat("Z", 4296),   // alphanumeric mode
		strings.Repeat("é", 1476),   // 2952 bytes after the ECI header
		strings.Repeat("a", 1273),   // forced H below
		strings.Repeat("AB12", 300), // mixed segments
	} {
		opts := EncodeOptions{}
		if len(text) == 1273 {
			opts.Level = LevelH
		}
		c, err := Encode(text, opts)
		if err != nil {
			t.Errorf("%d×%q: %v", utf8.RuneCountInString(text), text[:2], err)
			continue
		}
		res := zxingDecode(t, c.Image(1, QuietZone))
		if res.GetText() != text {
			t.Errorf("%d×%q: version %d %v does not read back", utf8.RuneCountInString(text), text[:2], c.Version, c.Level)
		}
	}
}

// TestEncode_Random round-trips random texts through Encode and gozxing: every code
// either encoder builds must be valid.
func TestEncode_Random(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{
		"0123456789",
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
		"abcdefghijklmnopqrstuvwxyz0123456789ABC!\"#&'()=~|{}[]<>?_\\^`@;,\t\n",
		"ABC123最佳运输北京ร้านกาแฟ💳€éü",
	}
	for i := 0; i < 60; i++ {
		alpha := []rune(alphabets[i%len(alphabets)])
		n := 1 + rng.IntN(400)
		r := make([]rune, n)
		for j := range r {
			// Runs of one alphabet part, so that go-qrcode mixes segments.
			if j > 0 && rng.IntN(4) > 0 {
				r[j] = alpha[(indexRune(alpha, r[j-1])+rng.IntN(3))%len(alpha)]
				continue
			}
			r[j] = alpha[rng.IntN(len(alpha))]
		}
		text := string(r)
		lvl := Level(rng.IntN(5))
		c, err := Encode(text, EncodeOptions{Level: lvl})
		if err != nil {
			t.Fatalf("Encode(%q, %v): %v", text, lvl, err)
		}
		if got := zxingDecode(t, c.Image(1, QuietZone)).GetText(); got != text {
			t.Fatalf("version %d %v: decoded %q, want %q", c.Version, c.Level, got, text)
		}
	}
}

func indexRune(rs []rune, r rune) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return 0
}

func TestCode_Module(t *testing.T) {
	c, err := Encode("HELLO", EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Size()
	// The finder pattern's corners are dark, the separator next to it light.
	for _, p := range [][2]int{{0, 0}, {6, 0}, {0, 6}, {6, 6}, {n - 1, 0}, {0, n - 1}, {2, 2}} {
		if !c.Module(p[0], p[1]) {
			t.Errorf("Module(%d, %d) = false, want dark (finder pattern)", p[0], p[1])
		}
	}
	for _, p := range [][2]int{{7, 0}, {0, 7}, {7, 7}, {-1, 0}, {0, -1}, {n, 0}, {0, n}, {1, 1}} {
		if c.Module(p[0], p[1]) {
			t.Errorf("Module(%d, %d) = true, want light", p[0], p[1])
		}
	}
}

func TestCode_Image(t *testing.T) {
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ scale, quiet, wantScale, wantQuiet int }{
		{1, 0, 1, 0},
		{3, QuietZone, 3, QuietZone},
		{0, 2, 1, 2},
		{-5, -1, 1, 0},
	}
	for _, tt := range tests {
		img := c.Image(tt.scale, tt.quiet)
		want := (c.Size() + 2*tt.wantQuiet) * tt.wantScale
		if b := img.Bounds(); b != image.Rect(0, 0, want, want) {
			t.Fatalf("Image(%d, %d) bounds %v, want %d px square", tt.scale, tt.quiet, b, want)
		}
		if err := sameModules(c, img, tt.wantScale, tt.wantQuiet); err != nil {
			t.Errorf("Image(%d, %d): %v", tt.scale, tt.quiet, err)
		}
	}
}

// sameModules checks that every pixel of img shows the module it covers (black or white).
func sameModules(c *Code, img image.Image, scale, quiet int) error {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			dark := c.Module((x-b.Min.X)/scale-quiet, (y-b.Min.Y)/scale-quiet)
			g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
			if (dark && g != 0) || (!dark && g != 0xFF) {
				return fmt.Errorf("pixel (%d, %d) = %d does not match its module (dark=%v)", x, y, g, dark)
			}
		}
	}
	return nil
}

func TestCode_WritePNG(t *testing.T) {
	c, err := Encode(payloadEMVASCII, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	full := c.Size() + 2*QuietZone // modules across, quiet zone included
	tests := []struct {
		name      string
		sizePx    int
		wantScale int
	}{
		{"default", 0, DefaultPNGSize / full},
		{"negative", -1, DefaultPNGSize / full},
		{"exact", 3 * full, 3},
		{"just-below", 3*full - 1, 2},
		{"too-small", 10, 1},
		{"large", 2000, 2000 / full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := c.WritePNG(&buf, tt.sizePx); err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := cfg.Width, full*tt.wantScale; got != want || cfg.Height != want {
				t.Fatalf("%d×%d px, want %d px square (%d px per module)", cfg.Width, cfg.Height, want, tt.wantScale)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if err := sameModules(c, img, tt.wantScale, QuietZone); err != nil {
				t.Error(err)
			}
		})
	}
	if err := c.WritePNG(&bytes.Buffer{}, MaxPNGSize+1); !errors.Is(err, posagent.ErrInvalidInput) {
		t.Errorf("WritePNG(MaxPNGSize+1) = %v, want an ErrInvalidInput", err)
	}
	if err := c.WritePNG(failWriter{}, 0); err == nil {
		t.Error("WritePNG to a failing writer: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// parseASCII turns the half-block rendering back into a grid of "ink" cells.
func parseASCII(t testing.TB, s string) [][]bool {
	t.Helper()
	if !strings.HasSuffix(s, "\n") {
		t.Fatalf("ASCII rendering does not end with a newline")
	}
	var rows [][]bool
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		var top, bottom []bool
		for _, r := range line {
			switch r {
			case ' ':
				top, bottom = append(top, false), append(bottom, false)
			case '▀':
				top, bottom = append(top, true), append(bottom, false)
			case '▄':
				top, bottom = append(top, false), append(bottom, true)
			case '█':
				top, bottom = append(top, true), append(bottom, true)
			default:
				t.Fatalf("unexpected character %q in ASCII rendering", r)
			}
		}
		rows = append(rows, top, bottom)
	}
	return rows
}

// asciiImage renders a half-block rendering as a picture of the terminal: ink black on
// white paper, or (invert) light glyphs on a dark terminal.
func asciiImage(t testing.TB, s string, invert bool, scale int) image.Image {
	rows := parseASCII(t, s)
	img := image.NewGray(image.Rect(0, 0, len(rows[0])*scale, len(rows)*scale))
	for y, row := range rows {
		for x, ink := range row {
			v := uint8(0xFF)
			if ink != invert {
				v = 0
			}
			for i := 0; i < scale*scale; i++ {
				img.SetGray(x*scale+i%scale, y*scale+i/scale, color.Gray{Y: v})
			}
		}
	}
	return img
}

func TestCode_ASCII(t *testing.T) {
	for _, text := range []string{"HELLO", payloadEMVChinese} {
		c, err := Encode(text, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		n := c.Size() + 2*QuietZone
		for _, invert := range []bool{false, true} {
			s := c.ASCII(invert)
			if got, want := strings.Count(s, "\n"), (n+1)/2; got != want {
				t.Errorf("invert=%v: %d lines, want %d", invert, got, want)
			}
			rows := parseASCII(t, s)
			for y, row := range rows {
				if len(row) != n {
					t.Fatalf("invert=%v: row %d has %d modules, want %d", invert, y, len(row), n)
				}
				for x, ink := range row {
					dark := c.Module(x-QuietZone, y-QuietZone)
					if y >= n {
						dark = false // padding below the quiet zone is quiet zone too
					}
					if ink != (dark != invert) {
						t.Fatalf("invert=%v: module (%d, %d) dark=%v drawn with ink=%v", invert, x, y, dark, ink)
					}
				}
			}
			got, err := DecodeImage(asciiImage(t, s, invert, 4))
			if err != nil || got != text {
				t.Errorf("invert=%v: the terminal picture decodes to %q, %v; want %q", invert, got, err, text)
			}
		}
	}
}

// rasterImage turns a GS v 0 raster into a picture of the printed paper.
func rasterImage(r Raster) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, r.WidthBytes*8, r.Height))
	for y := 0; y < r.Height; y++ {
		for x := 0; x < r.WidthBytes*8; x++ {
			if r.Data[y*r.WidthBytes+x/8]&(0x80>>(x%8)) != 0 {
				img.Pix[y*img.Stride+x] = 0
			} else {
				img.Pix[y*img.Stride+x] = 0xFF
			}
		}
	}
	return img
}

func TestCode_Raster(t *testing.T) {
	c, err := Encode(payloadEMVASCII, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ scale, want int }{{1, 1}, {3, 3}, {5, 5}, {0, 1}} {
		r := c.Raster(tt.scale)
		width := (c.Size() + 2*QuietZone) * tt.want
		if got, want := r.WidthBytes, (width+7)/8; got != want {
			t.Errorf("scale %d: WidthBytes %d, want %d", tt.scale, got, want)
		}
		if got, want := r.Height, width; got != want {
			t.Errorf("scale %d: Height %d, want %d", tt.scale, got, want)
		}
		if got, want := len(r.Data), r.WidthBytes*r.Height; got != want {
			t.Fatalf("scale %d: %d bytes of data, want %d", tt.scale, got, want)
		}
		img := rasterImage(r)
		// The padding bits past the right edge are 0 (unprinted).
		for y := 0; y < r.Height; y++ {
			for x := width; x < r.WidthBytes*8; x++ {
				if img.Pix[y*img.Stride+x] != 0xFF {
					t.Fatalf("scale %d: padding bit (%d, %d) is set", tt.scale, x, y)
				}
			}
		}
		if err := sameModules(c, img.SubImage(image.Rect(0, 0, width, width)), tt.want, QuietZone); err != nil {
			t.Errorf("scale %d: %v", tt.scale, err)
		}
	}
	// A 58 mm printer (384 dots) fits the EMV code at 5 dots per module.
	if r := c.Raster(384 / (c.Size() + 2*QuietZone)); r.WidthBytes > 48 {
		t.Errorf("raster for a 58 mm printer is %d bytes wide, want ≤ 48", r.WidthBytes)
	}
}
