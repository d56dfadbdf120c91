package qr

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// zbarimg (Debian package zbar-tools) is an independent QR decoder: codes we render must
// read the same with it as with our own decoder, or wallets built on other decoders may
// disagree with us.

// zbarPath returns the path of zbarimg, or "" when it is not installed.
func zbarPath() string {
	p, err := exec.LookPath("zbarimg")
	if err != nil {
		return ""
	}
	return p
}

// requireZbar returns the path of zbarimg or skips the test; with POSAGENT_REQUIRE_ZBAR=1
// (set in CI) a missing zbarimg fails the test instead.
func requireZbar(tb testing.TB) string {
	tb.Helper()
	p := zbarPath()
	if p == "" {
		if os.Getenv("POSAGENT_REQUIRE_ZBAR") == "1" {
			tb.Fatal("zbarimg not found on PATH and POSAGENT_REQUIRE_ZBAR=1 (install zbar-tools)")
		}
		tb.Skip("zbarimg not found on PATH (install zbar-tools, or set POSAGENT_REQUIRE_ZBAR=1 to make this fatal)")
	}
	return p
}

// zbarDecodeFile returns what zbarimg reads in one image file, without the newline it
// prints after the symbol, and false when it reads nothing.
func zbarDecodeFile(tb testing.TB, zbar, path string) (string, bool) {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(zbar, "--nodbus", "--raw", "-q", path)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == 4: // no symbol found
		return "", false
	case err != nil:
		tb.Fatalf("zbarimg %s: %v: %s", path, err, stderr.Bytes())
	}
	out := stdout.String()
	return strings.TrimSuffix(out, "\n"), out != ""
}

// zbarDecodeBatch runs zbarimg once over many files and returns, for each file that it
// read, the text of the first symbol. zbarimg's XML output is used to tell files apart; it
// is only reliable for ASCII text (zbarimg 0.23 mangles other bytes in XML), which is what
// the benchmark frames hold.
func zbarDecodeBatch(tb testing.TB, zbar string, paths []string) map[string]string {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(zbar, append([]string{"--nodbus", "--xml", "-q"}, paths...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 4) { // 4: some image had no symbol
		tb.Fatalf("zbarimg: %v: %s", err, stderr.Bytes())
	}
	var doc struct {
		Sources []struct {
			Href    string `xml:"href,attr"`
			Symbols []struct {
				Data struct {
					Format string `xml:"format,attr"`
					Text   string `xml:",chardata"`
				} `xml:"data"`
			} `xml:"index>symbol"`
		} `xml:"source"`
	}
	if err := xml.Unmarshal(stdout.Bytes(), &doc); err != nil {
		tb.Fatalf("zbarimg xml: %v", err)
	}
	got := make(map[string]string)
	for _, s := range doc.Sources {
		if len(s.Symbols) == 0 {
			continue
		}
		d := s.Symbols[0].Data
		text := d.Text
		if d.Format == "base64" {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
			if err != nil {
				tb.Fatalf("zbarimg xml: base64 data for %s: %v", s.Href, err)
			}
			text = string(b)
		}
		got[s.Href] = text
	}
	return got
}

func writeTestPNG(tb testing.TB, path string, img image.Image) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		tb.Fatal(err)
	}
	if err := f.Close(); err != nil {
		tb.Fatal(err)
	}
}

// TestZbar_Encode checks that codes rendered by Encode read back identically with
// zbarimg, in particular non-ASCII text (which needs the ECI header) and every level.
func TestZbar_Encode(t *testing.T) {
	zbar := requireZbar(t)
	dir := t.TempDir()
	tests := []struct {
		name, text string
		level      Level
	}{
		{"ascii", "HELLO WORLD 1234567890", LevelAuto},
		{"ascii-lower", "https://qr.alipay.com/bax03431ljhokirwl38f00a7", LevelAuto},
		{"emv-ascii", payloadEMVASCII, LevelAuto},
		{"emv-chinese", payloadEMVChinese, LevelAuto},
		{"emv-thai", payloadEMVThai, LevelAuto},
		{"chinese", "最佳运输 北京", LevelAuto},
		{"japanese-kana", "コーヒー ショップ", LevelAuto},
		{"emoji", "pay 💳 ok ✅", LevelAuto},
		{"latin1", "Café Zürich — 12,50 €", LevelAuto},
		{"emv-chinese-L", payloadEMVChinese, LevelL},
		{"emv-chinese-H", payloadEMVChinese, LevelH},
		{"emv-ascii-Q", payloadEMVASCII, LevelQ},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Encode(tt.text, EncodeOptions{Level: tt.level})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.name+".png")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.WritePNG(f, 0); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			got, ok := zbarDecodeFile(t, zbar, path)
			if !ok {
				t.Fatalf("zbarimg read nothing in the code for %q (v%d %s)", tt.text, c.Version, c.Level)
			}
			if got != tt.text {
				t.Errorf("zbarimg read %q, want %q", got, tt.text)
			}
		})
	}
}

// TestZbar_Renderings checks the printer raster and the terminal rendering with zbarimg.
func TestZbar_Renderings(t *testing.T) {
	zbar := requireZbar(t)
	dir := t.TempDir()
	c, err := Encode(payloadEMVChinese, EncodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	renders := map[string]image.Image{
		"raster":       rasterImage(c.Raster(3)),
		"ascii":        asciiImage(t, c.ASCII(false), false, 3),
		"ascii-invert": asciiImage(t, c.ASCII(true), true, 3),
	}
	for name, img := range renders {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".png")
			writeTestPNG(t, path, img)
			got, ok := zbarDecodeFile(t, zbar, path)
			if !ok {
				t.Fatal("zbarimg read nothing")
			}
			if got != payloadEMVChinese {
				t.Errorf("zbarimg read %q, want %q", got, payloadEMVChinese)
			}
		})
	}
}
