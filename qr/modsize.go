package qr

// moduleEstimate guesses the size in pixels of the modules of a code in g from the lengths
// of the dark and light runs along every second row: a pixel is dark or light when it is
// at least 10 grey levels below or above the mean of the 15 pixels around it, otherwise
// flat, and a run is counted only when it is bounded by the opposite shade on both sides
// (a flat pixel ends a run uncounted). The most frequent run length is taken as the module
// size: in a QR code about half the runs are one module long. It returns 0 when the rows
// hold fewer than 200 such runs (no code, or too little contrast to tell).
//
// It is a cheap hint for ordering the attempts, not a measurement: sensor noise gives runs
// of one pixel, and a blurred code too faint for the margin gives 0. It costs about 1 ms on
// a 640×480 frame.
func moduleEstimate(g *gray) int {
	const (
		half    = 7  // window: 2·half+1 pixels
		margin  = 10 // grey levels from the window's mean to count as dark or light
		maxRun  = 16 // longer runs are not modules
		minRuns = 200
		step    = 2 // rows
	)
	const win = 2*half + 1
	var hist [maxRun + 1]int
	total := 0
	if g.w < win+1 {
		return 0
	}
	for y := 0; y < g.h; y += step {
		row := g.pix[y*g.w : (y+1)*g.w]
		sum := 0
		for x := 0; x < win; x++ {
			sum += int(row[x])
		}
		prev, runStart, bounded := 0, 0, false
		for x := half; x < g.w-half; x++ {
			if x > half {
				sum += int(row[x+half]) - int(row[x-half-1])
			}
			d := int(row[x])*win - sum
			c := 0
			switch {
			case d < -margin*win:
				c = -1
			case d > margin*win:
				c = 1
			}
			if c == prev {
				continue
			}
			if c == 0 {
				bounded, prev = false, 0
				continue
			}
			if prev != 0 && bounded {
				if n := x - runStart; n <= maxRun {
					hist[n]++
					total++
				}
			}
			bounded = prev != 0
			prev, runStart = c, x
		}
	}
	if total < minRuns {
		return 0
	}
	best := 2
	for n := 3; n <= maxRun; n++ {
		if hist[n] > hist[best] {
			best = n
		}
	}
	return best
}
