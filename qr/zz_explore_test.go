package qr

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/posagent/posagent/qr/internal/distort"
)

func TestZZCover(t *testing.T) {
	code := corpusCode(t)
	names := []string{"base", "inverted", "stretched", "median", "up2", "up2-median", "up2-inverted", "highlight24", "highlight48", "highlight80", "sharpened", "sharpened2", "blur1", "up3", "up2-sharpened", "inverted-median", "median-median"}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true, gozxing.DecodeHintType_CHARACTER_SET: "UTF-8"}
	r := qrcode.NewQRCodeReader()
	classes := distort.Classes()
	classes = append(classes, distort.Class{Name: "persp2", Levels: []distort.Level{{"k0.1", distort.Spec{Keystone: 0.1}}, {"k0.15", distort.Spec{Keystone: 0.15}}}})
	var out strings.Builder
	for _, class := range classes {
		for _, lvl := range class.Levels {
			cnt := map[string]int{}
			union := 0
			for seed := uint64(1); seed <= 20; seed++ {
				f := distort.Frame(code, lvl.Spec, seed)
				v := &variants{full: toGray(f), cache: map[string]*gray{}}
				v.base = v.full
				any := false
				for _, n := range names {
					g := v.get(n)
					if g == nil { continue }
					for _, gl := range []bool{false, true} {
						if txt, ok := tryDecode(r, g, gl, hints); ok && txt == code.Text {
							k := n
							if gl { k += "/G" }
							cnt[k]++
							any = true
						}
					}
				}
				if any { union++ }
			}
			var ks []string
			for k := range cnt { ks = append(ks, k) }
			sort.Strings(ks)
			fmt.Fprintf(&out, "%s/%s union=%d:", class.Name, lvl.Name, union)
			for _, k := range ks { fmt.Fprintf(&out, " %s=%d", k, cnt[k]) }
			out.WriteString("\n")
		}
	}
	t.Log("\n" + out.String())
}
