package qr

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/posagent/posagent/qr/internal/distort"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestZZGreedy(t *testing.T) {
	code := corpusCode(t)
	type cand struct{ v string; g bool }
	var cands []cand
	for _, n := range []string{"base", "inverted", "stretched", "median", "up2", "up2-median", "up2-inverted", "highlight24", "highlight48", "sharpened", "up3", "up2-sharpened", "inverted-median"} {
		cands = append(cands, cand{n, false}, cand{n, true})
	}
	hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true, gozxing.DecodeHintType_CHARACTER_SET: "UTF-8"}
	r := qrcode.NewQRCodeReader()
	cost := map[string]time.Duration{}
	prep := map[string]time.Duration{}
	ncost := map[string]int{}
	var frames []string
	succ := map[string]map[int]bool{}
	for _, class := range distort.Classes() {
		for _, lvl := range class.Levels {
			for seed := uint64(1); seed <= 10; seed++ {
				fi := len(frames)
				frames = append(frames, class.Name+"/"+lvl.Name)
				f := distort.Frame(code, lvl.Spec, seed)
				v := &variants{full: toGray(f), cache: map[string]*gray{}}
				v.base = v.full
				for _, c := range cands {
					c0 := cpu()
					g := v.get(c.v)
					c1 := cpu()
					if g == nil { continue }
					prep[c.v] += c1 - c0
					txt, ok := tryDecode(r, g, c.g, hints)
					k := c.v
					if c.g { k += "/G" }
					cost[k] += cpu() - c1
					ncost[k]++
					if ok && txt == code.Text {
						if succ[k] == nil { succ[k] = map[int]bool{} }
						succ[k][fi] = true
					}
				}
			}
		}
	}
	var out strings.Builder
	for k := range cost {
		fmt.Fprintf(&out, "%s decode %.1fms\n", k, float64(cost[k])/float64(ncost[k])/1e6)
	}
	for k, d := range prep {
		fmt.Fprintf(&out, "prep %s %.1fms\n", k, float64(d)/float64(len(frames))/1e6)
	}
	covered := map[int]bool{}
	used := map[string]bool{}
	for step := 0; step < 20; step++ {
		best, bestN := "", 0
		for k, s := range succ {
			if used[k] { continue }
			n := 0
			for fi := range s { if !covered[fi] { n++ } }
			if n > bestN { best, bestN = k, n }
		}
		if bestN == 0 { break }
		used[best] = true
		var which []string
		cnt := map[string]int{}
		for fi := range succ[best] { if !covered[fi] { covered[fi] = true; cnt[frames[fi]]++ } }
		for f, n := range cnt { which = append(which, fmt.Sprintf("%s:%d", f, n)) }
		fmt.Fprintf(&out, "step %d: %s +%d (total %d/%d) %v\n", step, best, bestN, len(covered), len(frames), which)
	}
	t.Log("\n" + out.String())
}
