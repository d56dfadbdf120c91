package qr

import (
	"os"
	"testing"
)

func TestZZWrite(t *testing.T) {
	for i, s := range []string{"HELLO 123", "最佳运输 北京 ok", "a\nb"} {
		c, err := Encode(s, EncodeOptions{})
		if err != nil { t.Fatal(err) }
		f, _ := os.Create("/tmp/zb/" + string(rune('a'+i)) + ".png")
		c.WritePNG(f, 0)
		f.Close()
		t.Logf("%q v%d %s eci=%v", s, c.Version, c.Level, c.ECI)
		t.Log("\n" + c.ASCII(false))
	}
	os.WriteFile("/tmp/zb/d.png", []byte("garbage"), 0o644)
}
