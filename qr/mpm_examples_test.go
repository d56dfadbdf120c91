package qr

import (
	"bufio"
	"errors"
	"os"
	"sort"
	"strings"
	"testing"
)

// The example of EMV QRCPS MPM v1.0/v1.1: two merchant account templates, the Chinese
// language template, a tip prompt, additional data with "***" and an unreserved template.
const emvSpecExample = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A"

func TestParseMPM_SpecExample(t *testing.T) {
	m, err := ParseMPM(emvSpecExample, Strict)
	if err != nil {
		t.Fatalf("ParseMPM: %v", err)
	}
	tests := []struct {
		path []string
		want string
	}{
		{[]string{"00"}, "01"},
		{[]string{"01"}, "12"},
		{[]string{"29", "00"}, "D15600000000"},
		{[]string{"29", "05"}, "A93FO3230Q"},
		{[]string{"31", "00"}, "D15600000001"},
		{[]string{"31", "03"}, "12345678"},
		{[]string{"52"}, "4111"},
		{[]string{"58"}, "CN"},
		{[]string{"59"}, "BEST TRANSPORT"},
		{[]string{"60"}, "BEIJING"},
		{[]string{"64", "00"}, "ZH"},
		{[]string{"64", "01"}, "最佳运输"},
		{[]string{"64", "02"}, "北京"},
		{[]string{"54"}, "23.72"},
		{[]string{"53"}, "156"},
		{[]string{"55"}, "01"},
		{[]string{"62", "03"}, "1234"},
		{[]string{"62", "06"}, "***"},
		{[]string{"62", "07"}, "A6008667"},
		{[]string{"62", "09"}, "ME"},
		{[]string{"91", "00"}, "A011223344998877"},
		{[]string{"91", "07"}, "12345678"},
		{[]string{"63"}, "A13A"},
	}
	for _, tt := range tests {
		if got := m.value(tt.path...); got != tt.want {
			t.Errorf("%s = %q, want %q", strings.Join(tt.path, "."), got, tt.want)
		}
	}
	var order []string
	for _, o := range m.Objects {
		order = append(order, o.ID)
	}
	if got, want := strings.Join(order, ","), "00,01,29,31,52,58,59,60,64,54,53,55,62,91,63"; got != want {
		t.Errorf("payload order = %s, want %s", got, want)
	}
	s := m.Merchant()
	if got, want := strings.Join(s.Schemes, ","), "unionpay"; got != want {
		t.Errorf("schemes = %s, want %s", got, want)
	}
	if s.CurrencyCode != "CNY" || s.Initiation != "dynamic" || s.Tip != "prompt" {
		t.Errorf("summary = %+v", s)
	}
	// Rebuilding the parsed objects in the same order gives the same bytes.
	rebuilt, err := BuildMPM(m.Objects[:len(m.Objects)-1])
	if err != nil {
		t.Fatalf("BuildMPM(parsed objects): %v", err)
	}
	if rebuilt != emvSpecExample {
		t.Errorf("rebuilt payload differs:\n got %s\nwant %s", rebuilt, emvSpecExample)
	}
}

func TestParseMPM_RealWorld(t *testing.T) {
	f, err := os.Open("testdata/mpm/realworld.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			t.Fatalf("bad fixture line %q", line)
		}
		expect, name, payload := cols[0], cols[1], cols[2]
		n++
		t.Run(name, func(t *testing.T) {
			_, serr := ParseMPM(payload, Strict)
			m, lerr := ParseMPM(payload, Lenient)
			switch expect {
			case "strict":
				if serr != nil {
					t.Fatalf("strict: %v", serr)
				}
			case "lenient":
				if serr == nil {
					t.Fatal("strict parse succeeded; the code breaks a rule")
				}
				if lerr != nil {
					t.Fatalf("lenient: %v", lerr)
				}
				var got []string
				seen := map[string]bool{}
				for _, w := range m.Warnings {
					if !seen[w.ID] {
						seen[w.ID] = true
						got = append(got, w.ID)
					}
				}
				want := strings.Split(cols[3], ",")
				sort.Strings(got)
				sort.Strings(want)
				if strings.Join(got, ",") != strings.Join(want, ",") {
					t.Errorf("warnings on %v, want on %v: %v", got, want, m.Warnings)
				}
			case "crc":
				if !errors.Is(lerr, ErrCRC) || !errors.Is(serr, ErrCRC) {
					t.Fatalf("want a checksum error in both modes, got %v / %v", serr, lerr)
				}
			case "malformed":
				if !errors.Is(lerr, ErrMalformed) || !errors.Is(serr, ErrMalformed) {
					t.Fatalf("want a structural error in both modes, got %v / %v", serr, lerr)
				}
			default:
				t.Fatalf("unknown expectation %q", expect)
			}
		})
	}
	if n < 50 {
		t.Fatalf("only %d fixtures read", n)
	}
}
