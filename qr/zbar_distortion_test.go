package qr

import (
	"testing"

	"github.com/posagent/posagent/qr/internal/distort"
)

// TestDistortion_AtLeastZbar runs our decoder and zbarimg over the same frames of every
// distortion class (8 seeded frames per strength, 2 under -race, which decodes many times
// slower; the frames are the same on every run) and requires, per class, at least as many
// correct reads as zbarimg's, and never a misread: a decoded text is the encoded one or an
// error. It needs zbarimg (skipped without it unless POSAGENT_REQUIRE_ZBAR=1) and takes a
// minute, so it skips with -short.
func TestDistortion_AtLeastZbar(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: decodes 300 frames with two decoders")
	}
	zbar := requireZbar(t)
	n := 8
	if raceEnabled {
		n = 2
	}
	dir := t.TempDir()
	code := corpusCode(t)
	for _, class := range distort.Classes() {
		t.Run(class.Name, func(t *testing.T) {
			ours, theirs, total := 0, 0, 0
			for _, lvl := range class.Levels {
				frames := corpusFrames(code, lvl, n)
				ok, attempts := decodeFrames(frames, code.Text)
				if bad := attempts["(wrong text)"]; bad > 0 {
					t.Errorf("%s/%s: %d misread frame(s)", class.Name, lvl.Name, bad)
				}
				z := zbarFrames(t, zbar, dir, class.Name+"-"+lvl.Name, frames, code.Text)
				t.Logf("%s/%s: ours %d/%d, zbarimg %d/%d", class.Name, lvl.Name, ok, n, z, n)
				ours, theirs, total = ours+ok, theirs+z, total+n
			}
			if ours < theirs {
				t.Errorf("%s: we read %d/%d frames, zbarimg %d/%d", class.Name, ours, total, theirs, total)
			}
		})
	}
}
