package qr

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestDecodeImage_CleanLarge decodes clean, upright codes of versions 10 to 14 with
// random payloads, at 1 to 6 pixels per module and with 2 to 4 modules of quiet zone. In
// sharp images of such codes the data area often holds a run that passes for a finder
// pattern and hides the true bottom-left corner from ZXing's finder (it failed on about
// one code in twenty at 6 pixels per module before decodeSweep scanned both ways).
func TestDecodeImage_CleanLarge(t *testing.T) {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:/.?=&-"
	n := 60
	if testing.Short() || raceEnabled {
		n = 20
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		b := make([]byte, 150+rng.IntN(200))
		for j := range b {
			b[j] = chars[rng.IntN(len(chars))]
		}
		text := string(b)
		c, err := Encode(text, EncodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, quiet := range []int{2, 3, 4} {
			for _, px := range []int{1, 2, 3, 4, 6} {
				got, err := DecodeImage(c.Image(px, quiet))
				if err != nil || got != text {
					t.Errorf("%s: got %q, %v; want the %d-character payload", fmt.Sprintf("code %d (v%d %s), quiet %d, %d px/module", i, c.Version, c.Level, quiet, px), got, err, len(text))
				}
			}
		}
	}
}
