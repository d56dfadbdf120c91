package hid

import (
	"bytes"
	"testing"
)

// FuzzDecodeEvents feeds any bytes to the event decoder in both layouts and the keyboard
// decoder after it: the decoder takes whole events only and gives back what it read, and
// the codes typed are printable ASCII within the bound.
func FuzzDecodeEvents(f *testing.F) {
	for _, l := range []Layout{Layout64, LayoutARM32} {
		ty := &typing{l: l}
		ty.typeText(f, "134567890123456789")
		ty.tap(KeyCapsLock)
		ty.typeText(f, "Ab#")
		ty.tap(keyF1)
		ty.enter()
		f.Add(ty.buf)
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 23))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []Layout{Layout64, LayoutARM32} {
			evs, n := DecodeEvents(l, data)
			size := l.Size()
			if n%size != 0 || n > len(data) || len(data)-n >= size || len(evs) != n/size {
				t.Fatalf("%+v: %d events in %d of %d bytes", l, len(evs), n, len(data))
			}
			var back []byte
			for _, ev := range evs {
				back = EncodeEvent(l, back, ev)
			}
			for i := 0; i < len(evs); i++ {
				got, want := back[i*size+l.TimeSize:(i+1)*size], data[i*size+l.TimeSize:(i+1)*size]
				if !bytes.Equal(got, want) {
					t.Fatalf("event %d re-encodes as % x, read from % x", i, got, want)
				}
			}
			kb := Keyboard{MaxLen: 32}
			for _, ev := range evs {
				typed, ok := kb.Feed(ev)
				if !ok {
					continue
				}
				if typed.Err != nil && typed.Code != "" {
					t.Fatalf("a rejected code came with its text")
				}
				if len(typed.Code) > 32 {
					t.Fatalf("code of %d characters passed the bound 32", len(typed.Code))
				}
				for _, c := range []byte(typed.Code) {
					if c < 0x20 || c > 0x7e {
						t.Fatalf("code has byte %#x", c)
					}
				}
			}
		}
	})
}
