package qr

import (
	"testing"
	"github.com/posagent/posagent/qr/internal/distort"
)

func TestZZFrames(t *testing.T) {
	code := corpusCode(t)
	for _, class := range distort.Classes() {
		for _, lvl := range class.Levels {
			writeTestPNG(t, "/tmp/zb/f-"+class.Name+"-"+lvl.Name+".png", distort.Frame(code, lvl.Spec, 1))
		}
	}
}
