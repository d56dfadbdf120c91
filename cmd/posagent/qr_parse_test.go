package main

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// TestMain_QRParseCPMMasked: a consumer-presented code's card number (5A) and track 2 (57)
// are masked unless --reveal is given.
func TestMain_QRParseCPMMasked(t *testing.T) {
	// 85 CPV01; 61 {4F AID, 57 track 2}; 62 {5A PAN}
	raw, err := hex.DecodeString("85054350563031" +
		"6119" + "4F07A0000003330101" + "570E6212345678901230123D3012201F" +
		"620A" + "5A081234567890123458")
	if err != nil {
		t.Fatal(err)
	}
	payload := base64.StdEncoding.EncodeToString(raw)
	tests := []struct {
		name    string
		args    []string
		want    []string
		mustNot []string
	}{
		{"masked", []string{"qr", "parse", payload},
			[]string{`"masked": "123456******3458"`, `"masked": "621234*********0123D3012…"`},
			[]string{"1234567890123458", "6212345678901230123", "5678901230123D"}},
		{"revealed", []string{"qr", "parse", "--reveal", payload},
			[]string{"1234567890123458", "6212345678901230123D3012201F"},
			[]string{`"masked"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := run(t, "", tt.args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(out, w) {
					t.Errorf("output shows %s:\n%s", w, out)
				}
			}
		})
	}
}
