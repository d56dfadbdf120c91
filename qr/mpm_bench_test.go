package qr

import "testing"

func BenchmarkParseMPM(b *testing.B) {
	for _, mode := range []struct {
		name string
		mode Mode
	}{{"strict", Strict}, {"lenient", Lenient}} {
		b.Run(mode.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(emvSpecExample)))
			for b.Loop() {
				if _, err := ParseMPM(emvSpecExample, mode.mode); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkBuildMPM(b *testing.B) {
	objs := shopCode().Objects()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildMPM(objs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClassify(b *testing.B) {
	for _, code := range []struct{ name, code string }{{"wallet", "]Q1134567890123456789\r\n"}, {"mpm", emvSpecExample}} {
		b.Run(code.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Classify(code.code)
			}
		})
	}
}
