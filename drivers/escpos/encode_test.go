package escpos

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/possim"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s: %d bytes, golden %d; first difference at byte %d (go test -update rewrites it after review)", name, len(got), len(want), i)
	}
}

func TestCommands_Golden(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"Init", Init(), []byte{0x1B, 0x40}},
		{"Bold", Bold(true), []byte{0x1B, 0x45, 1}},
		{"Size", Size(2, 2), []byte{0x1D, 0x21, 0x11}},
		{"Align", Align(AlignCenter), []byte{0x1B, 0x61, 1}},
		{"Cut", Cut(true, 3), []byte{0x1D, 0x56, 66, 3}},
		{"Drawer", Drawer(), []byte{0x1B, 0x70, 0, 50, 250}},
		{"Status", StatusQuery(4), []byte{0x10, 0x04, 4}},
		{"Chinese", ChineseOn(), []byte{0x1C, 0x26}},
		{"QR", NativeQR([]byte("AB"), 4, 0), []byte{
			0x1D, 0x28, 0x6B, 4, 0, 49, 65, 50, 0,
			0x1D, 0x28, 0x6B, 3, 0, 49, 67, 4,
			0x1D, 0x28, 0x6B, 3, 0, 49, 69, 49,
			0x1D, 0x28, 0x6B, 5, 0, 49, 80, 48, 'A', 'B',
			0x1D, 0x28, 0x6B, 3, 0, 49, 81, 48}},
	}
	for _, tt := range tests {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s = % X, want % X", tt.name, tt.got, tt.want)
		}
	}
}

// TestEncodeReceipt_Golden records the bytes for the sample receipt on every profile and
// reads them back with the simulator's parser.
func TestEncodeReceipt_Golden(t *testing.T) {
	rc := sampleReceipt(t)
	for _, name := range ProfileNames("") {
		t.Run(name, func(t *testing.T) {
			p := mustProfile(t, name)
			got, err := EncodeReceipt(rc, p, EncodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "receipt-"+name+".bin", got)

			jobs, status := possim.ParseESCPOS(got, p.WidthDots)
			if len(jobs) != 1 || status != 0 {
				t.Fatalf("simulator read %d jobs and %d status requests, want 1 and 0", len(jobs), status)
			}
			j := jobs[0]
			if len(j.Unknown) > 0 || j.Overflow > 0 {
				t.Errorf("unknown commands %q, %d lines wider than the paper", j.Unknown, j.Overflow)
			}
			if len(j.QR) != 1 || j.QR[0] != rc.QR {
				t.Errorf("QR read back %q, want %q", j.QR, rc.QR)
			}
			if wantCuts := map[bool]int{true: 0, false: 1}[p.Cutter == "none"]; j.Cuts != wantCuts {
				t.Errorf("%d cuts, want %d", j.Cuts, wantCuts)
			}
			want := []string{"Corner Shop", "Water 550ml", "2 x 3.00", "65.90", "WeChat Pay", "Thank you"}
			if p.Chinese {
				want = append(want, "便利店 Corner Shop", "矿泉水 Water 550ml", "谢谢惠顾 Thank you")
			}
			for _, w := range want {
				if !strings.Contains(j.Text, w) {
					t.Errorf("printed text lacks %q:\n%s", w, j.Text)
				}
			}
			if p.Chinese && !strings.HasSuffix(j.Lines[len(j.Lines)-2], "谢谢惠顾 Thank you") {
				t.Errorf("footer not as printed: %q", j.Lines[len(j.Lines)-2:])
			}
		})
	}
}

func TestEncodeReceipt_QRModes(t *testing.T) {
	rc := sampleReceipt(t)
	p := mustProfile(t, "generic-80")
	for _, tt := range []struct {
		name       string
		mode       QRMode
		qr         string
		wantNative bool
	}{
		{"auto-ascii", QRAuto, rc.QR, true},
		{"auto-chinese", QRAuto, "https://example.com/发票?id=42", false},
		{"forced-raster", QRRaster, rc.QR, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := *rc
			r.QR = tt.qr
			data, err := EncodeReceipt(&r, p, EncodeOptions{QR: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			native := bytes.Contains(data, []byte{0x1D, '(', 'k'})
			raster := bytes.Contains(data, []byte{0x1D, 'v', '0'})
			if native != tt.wantNative || raster == tt.wantNative {
				t.Errorf("native %v raster %v, want native %v", native, raster, tt.wantNative)
			}
			jobs, _ := possim.ParseESCPOS(data, p.WidthDots)
			if len(jobs) != 1 || len(jobs[0].QR) != 1 || jobs[0].QR[0] != tt.qr {
				t.Errorf("QR read back wrong: %+v", jobs)
			}
		})
	}
	r := *rc
	if _, err := EncodeReceipt(&r, mustProfile(t, "generic-58"), EncodeOptions{QR: QRNative}); !errors.Is(err, posagent.ErrUnsupported) {
		t.Errorf("native QR on a raster-only profile: %v, want ErrUnsupported", err)
	}
}

func TestRasterBands(t *testing.T) {
	r := struct{ wb, h, rows, wantBands int }{3, 10, 4, 3}
	data := RasterBands(rasterOf(r.wb, r.h), r.rows)
	if n := bytes.Count(data, []byte{0x1D, 'v', '0', 0}); n != r.wantBands {
		t.Errorf("%d bands, want %d", n, r.wantBands)
	}
	if want := r.wantBands*8 + r.wb*r.h; len(data) != want {
		t.Errorf("%d bytes, want %d", len(data), want)
	}
}
