package qr

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/posagent/posagent/qr/internal/distort"
)

// candidateAttempts are every attempt TestAttemptOrder measures; attempts is the order
// it suggests.
var candidateAttempts = []attempt{
	{"base", false}, {"base", true}, {"median", false}, {"inverted", false}, {"inverted", true},
	{"sharpened", false}, {"sharp4", false}, {"highlight", false}, {"stretched", false},
	{"up2", false}, {"up2", true}, {"up2-sharpened", false}, {"up2-sharpened", true},
	{"sharp4-up2", false}, {"up2-median", false}, {"up2-inverted", true}, {"up3", false},
	{"sharp8", false}, {"sharp4-up3", false},
}

// TestAttemptOrder measures, on the distortion corpus (every class and strength,
// POSAGENT_REPORT_N frames each, default 8), each attempt on its own: the frames it reads
// and its cost per frame (pre-processing included). It then orders them greedily by hit
// rate per millisecond: the attempt reading the most of the frames not yet read per
// millisecond spent on those frames comes next. The order of attempts in decode.go is
// this order. It only runs with POSAGENT_REPORT=1:
//
//	POSAGENT_REPORT=1 go test ./qr -run TestAttemptOrder -v
func TestAttemptOrder(t *testing.T) {
	if os.Getenv("POSAGENT_REPORT") != "1" {
		t.Skip("set POSAGENT_REPORT=1 (and -v) to measure the decoding attempts")
	}
	n := reportN(t, 8)
	code := corpusCode(t)
	var frames []*gray
	var labels []string
	for _, class := range distort.Classes() {
		for _, lvl := range class.Levels {
			for _, f := range corpusFrames(code, lvl, n) {
				frames = append(frames, toGray(f))
				labels = append(labels, class.Name+"/"+lvl.Name)
			}
		}
	}
	hints := map[gozxing.DecodeHintType]interface{}{
		gozxing.DecodeHintType_TRY_HARDER:    true,
		gozxing.DecodeHintType_CHARACTER_SET: "UTF-8",
	}
	type stat struct {
		a    attempt
		hit  []bool
		cost []time.Duration
	}
	stats := make([]*stat, len(candidateAttempts))
	for i, a := range candidateAttempts {
		st := &stat{a: a, hit: make([]bool, len(frames)), cost: make([]time.Duration, len(frames))}
		for j, f := range frames {
			start := time.Now()
			v := &variants{full: f, base: f, cache: map[string]*gray{}}
			if g := v.get(a.variant); g != nil {
				text, ok := tryDecode(qrcode.NewQRCodeReader(), g, a.global, hints)
				if ok && text != code.Text {
					t.Errorf("%s misread %s frame %d: %q", a, labels[j], j, text)
				}
				st.hit[j] = ok && text == code.Text
			}
			st.cost[j] = time.Since(start)
		}
		stats[i] = st
	}
	// Greedy order by new hits per millisecond on the frames still unread.
	read := make([]bool, len(frames))
	left := append([]*stat(nil), stats...)
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "order\tattempt\talone ok\talone ms/frame\tnew hits\tms on unread\thits per s\tread so far")
	total := 0
	for k := 1; len(left) > 0; k++ {
		best, bestRate := -1, -1.0
		var bestHits int
		var bestCost time.Duration
		for i, st := range left {
			hits := 0
			var cost time.Duration
			for j := range frames {
				if read[j] {
					continue
				}
				cost += st.cost[j]
				if st.hit[j] {
					hits++
				}
			}
			rate := float64(hits) / max(cost.Seconds(), 1e-9)
			if rate > bestRate {
				best, bestRate, bestHits, bestCost = i, rate, hits, cost
			}
		}
		st := left[best]
		left = append(left[:best], left[best+1:]...)
		alone := 0
		var aloneCost time.Duration
		for j := range frames {
			if st.hit[j] {
				alone++
			}
			aloneCost += st.cost[j]
			if st.hit[j] && !read[j] {
				read[j] = true
				total++
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%d/%d\t%.1f\t%d\t%.0f\t%.1f\t%d/%d\n", k, st.a, alone, len(frames),
			float64(aloneCost.Microseconds())/1000/float64(len(frames)), bestHits, float64(bestCost.Microseconds())/1000, bestRate, total, len(frames))
	}
	tw.Flush()
	var unread []string
	for j, r := range read {
		if !r {
			unread = append(unread, labels[j])
		}
	}
	sort.Strings(unread)
	t.Logf("%d frames (%d per strength)\n%s\nread by no attempt: %s", len(frames), n, b.String(), strings.Join(unread, " "))
}
