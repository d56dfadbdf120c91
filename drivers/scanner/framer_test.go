package scanner

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// frames feeds in (split at every '|' into separate Feed calls), then flushes.
func frames(cfg FrameConfig, in string) []Frame {
	f := NewFramer(cfg)
	var out []Frame
	for _, part := range strings.Split(in, "|") {
		out = append(out, f.Feed([]byte(part))...)
	}
	return append(out, f.Flush()...)
}

func TestFramer(t *testing.T) {
	const wechat = "134567890123456789"
	long := strings.Repeat("7", 40)
	tests := []struct {
		name string
		cfg  FrameConfig
		in   string
		want []string // codes, or "!" + the reason's text for rejects; "aim:" entries check the AIM
	}{
		{"cr", FrameConfig{Suffix: SuffixCR}, wechat + "\r", []string{wechat}},
		{"cr split", FrameConfig{Suffix: SuffixCR}, "1345|6789012|3456789\r|", []string{wechat}},
		{"cr two in one read", FrameConfig{Suffix: SuffixCR}, "ABCD\rEFGH\r", []string{"ABCD", "EFGH"}},
		{"cr mode tolerates crlf", FrameConfig{Suffix: SuffixCR}, "ABCD\r|\nEFGH\r\n", []string{"ABCD", "EFGH"}},
		{"lf", FrameConfig{Suffix: SuffixLF}, "ABCD\nEFGH\n", []string{"ABCD", "EFGH"}},
		{"crlf", FrameConfig{Suffix: SuffixCRLF}, "ABCD\r|\nEFGH\r\n", []string{"ABCD", "EFGH"}},
		{"crlf with cr only at the end", FrameConfig{Suffix: SuffixCRLF}, "ABCD\r", []string{"ABCD"}},
		{"tab", FrameConfig{Suffix: SuffixTab}, "ABCD\tEFGH\t", []string{"ABCD", "EFGH"}},
		{"none ends at the gap", FrameConfig{Suffix: SuffixNone}, "AB|CD", []string{"ABCD"}},
		{"empty frames dropped", FrameConfig{Suffix: SuffixCR}, "\r\r\rABCD\r", []string{"ABCD"}},
		{"aim stripped", FrameConfig{Suffix: SuffixCR}, "]Q1" + wechat + "\r", []string{wechat, "aim:]Q1"}},
		{"prefix and aim", FrameConfig{Suffix: SuffixCR, Prefix: "@@"}, "@@]Q1ABCD\r", []string{"ABCD", "aim:]Q1"}},
		{"prefix missing", FrameConfig{Suffix: SuffixCR, Prefix: "@@"}, "ABCD\r", []string{"!configured prefix missing"}},
		{"utf-8 text kept", FrameConfig{Suffix: SuffixCR}, "最佳运输\r", []string{"最佳运输"}},
		{"too long", FrameConfig{Suffix: SuffixCR, MaxLen: 20}, long + "\rABCD\r", []string{"!code too long", "ABCD"}},
		{"exactly max with crlf", FrameConfig{Suffix: SuffixCRLF, MaxLen: 4}, "ABCD\r\n", []string{"ABCD"}},
		{"too short", FrameConfig{Suffix: SuffixCR}, "AB\r", []string{"!code too short"}},
		{"control byte", FrameConfig{Suffix: SuffixCR}, "AB\x00CD\r", []string{"!control byte in code"}},
		{"noise", FrameConfig{Suffix: SuffixCR}, "\xff\xfe\x80\x81\r", []string{"!not text (line noise?)"}},
		{"incomplete at the gap", FrameConfig{Suffix: SuffixCR}, "ABCD", []string{"!no suffix before the line went quiet"}},
		{"noise then code", FrameConfig{Suffix: SuffixCR}, "\x13\x8f\r" + wechat + "\r", []string{"!control byte in code", wechat}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range frames(tt.cfg, tt.in) {
				switch {
				case f.Err != nil:
					got = append(got, "!"+reasonOf(f.Err))
					if f.Code != "" {
						t.Errorf("rejected frame has code %q", f.Code)
					}
				default:
					got = append(got, f.Code)
					if f.AIM != "" {
						got = append(got, "aim:"+f.AIM)
					}
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// reasonOf returns the text of the sentinel err wraps.
func reasonOf(err error) string {
	for _, r := range []error{ErrTooLong, ErrTooShort, ErrControl, ErrNoise, ErrNoPrefix, ErrIncomplete} {
		if errors.Is(err, r) {
			return r.Error()
		}
	}
	return "unknown reason: " + err.Error()
}

func TestFramer_RejectDoesNotLeakCode(t *testing.T) {
	secret := "134567890123456789"
	for _, in := range []string{secret + "\x01\r", secret, "\xff" + secret + "\r"} {
		for _, f := range frames(FrameConfig{Suffix: SuffixCR, MaxLen: 10}, in) {
			if f.Err != nil && strings.Contains(f.Err.Error(), "4567890") {
				t.Errorf("reject reason %q contains the code", f.Err)
			}
		}
	}
}

func TestParseSuffix(t *testing.T) {
	for _, s := range []Suffix{SuffixCR, SuffixLF, SuffixCRLF, SuffixTab, SuffixNone} {
		got, err := ParseSuffix(strings.ToUpper(s.String()))
		if err != nil || got != s {
			t.Errorf("ParseSuffix(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseSuffix("etx"); err == nil {
		t.Error("ParseSuffix(etx) accepted")
	}
}

// FuzzFramer checks, for any input and any way of splitting it into reads: the framer
// never panics, splitting does not change the frames, accepted codes are bounded, printable
// UTF-8 without control bytes, and every frame is either a code or a reason.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("134567890123456789\r"), uint8(0), uint8(3), "")
	f.Add([]byte("]Q1000201010211\r\n"), uint8(2), uint8(1), "")
	f.Add([]byte("@@]Q1ABCD\tEFGH"), uint8(3), uint8(5), "@@")
	f.Add([]byte("\xff\x00\r\r\nABCD"), uint8(4), uint8(2), "")
	f.Fuzz(func(t *testing.T, in []byte, suffix, split uint8, prefix string) {
		cfg := FrameConfig{Suffix: Suffix(suffix % 5), Prefix: prefix, MaxLen: 64}
		whole := NewFramer(cfg)
		want := append(whole.Feed(in), whole.Flush()...)

		parts := NewFramer(cfg)
		var got []Frame
		step := int(split)%7 + 1
		for i := 0; i < len(in); i += step {
			got = append(got, parts.Feed(in[i:min(i+step, len(in))])...)
		}
		got = append(got, parts.Flush()...)

		if len(got) != len(want) {
			t.Fatalf("%d frames fed whole, %d fed in %d-byte reads", len(want), len(got), step)
		}
		for i := range got {
			if got[i].Code != want[i].Code || got[i].AIM != want[i].AIM || (got[i].Err == nil) != (want[i].Err == nil) {
				t.Fatalf("frame %d: whole %+v, split %+v", i, want[i], got[i])
			}
			fr := got[i]
			if fr.Err != nil {
				if fr.Code != "" {
					t.Fatalf("rejected frame with a code")
				}
				continue
			}
			if len(fr.Code) < 4 || len(fr.Code) > 64 || !utf8.ValidString(fr.Code) {
				t.Fatalf("accepted code of %d bytes, valid UTF-8 %v", len(fr.Code), utf8.ValidString(fr.Code))
			}
			for _, c := range []byte(fr.Code) {
				if c < 0x20 || c == 0x7F {
					t.Fatalf("accepted code with control byte 0x%02X", c)
				}
			}
		}
	})
}
