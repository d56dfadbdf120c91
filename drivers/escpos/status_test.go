package escpos

import (
	"errors"
	"testing"
)

func TestDecodeStatus(t *testing.T) {
	tests := []struct {
		name         string
		p1, p2, p4   byte
		want         error
		nearEnd, bad bool
		wantString   string
	}{
		{"ready", 0x12, 0x12, 0x12, nil, false, false, "ready"},
		{"near end", 0x12, 0x12, 0x1E, nil, true, false, "paper-near-end"},
		{"paper end", 0x1A, 0x32, 0x7E, ErrPaperEnd, true, false, "offline,paper-end,paper-near-end"},
		{"paper end, sensor only", 0x12, 0x12, 0x72, ErrPaperEnd, false, false, "paper-end"},
		{"cover open", 0x1A, 0x16, 0x12, ErrCoverOpen, false, false, "offline,cover-open"},
		{"offline, error", 0x1A, 0x52, 0x12, ErrPrinterError, false, false, "offline,error"},
		{"offline", 0x1A, 0x12, 0x12, ErrOffline, false, false, "offline"},
		{"drawer high", 0x16, 0x12, 0x12, nil, false, false, "ready"},
		{"bad fixed bits", 0x13, 0x12, 0x12, nil, false, true, ""},
		{"garbage", 0x12, 0x12, 0xFF, nil, false, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := DecodeStatus(tt.p1, tt.p2, tt.p4)
			if tt.bad {
				if !errors.Is(err, ErrBadStatus) {
					t.Fatalf("err = %v, want ErrBadStatus", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := st.Err(); !errors.Is(got, tt.want) || (tt.want == nil) != (got == nil) {
				t.Errorf("Err() = %v, want %v", got, tt.want)
			}
			if st.PaperNearEnd != tt.nearEnd {
				t.Errorf("PaperNearEnd = %v, want %v", st.PaperNearEnd, tt.nearEnd)
			}
			if got := st.String(); got != tt.wantString {
				t.Errorf("String() = %q, want %q", got, tt.wantString)
			}
		})
	}
}

// FuzzDecodeStatus: any three bytes decode or fail with ErrBadStatus, never panic; a
// decoded status that says paper end, cover open or offline is never ready to print.
func FuzzDecodeStatus(f *testing.F) {
	f.Add(byte(0x12), byte(0x12), byte(0x12))
	f.Add(byte(0x1A), byte(0x32), byte(0x7E))
	f.Add(byte(0x1A), byte(0x16), byte(0x12))
	f.Add(byte(0xFF), byte(0x00), byte(0x93))
	f.Fuzz(func(t *testing.T, p1, p2, p4 byte) {
		st, err := DecodeStatus(p1, p2, p4)
		valid := IsStatusByte(p1) && IsStatusByte(p2) && IsStatusByte(p4)
		if valid != (err == nil) {
			t.Fatalf("DecodeStatus(%#x, %#x, %#x) err = %v, fixed bits valid = %v", p1, p2, p4, err, valid)
		}
		if err != nil {
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v does not wrap ErrBadStatus", err)
			}
			return
		}
		if (st.PaperEnd || st.CoverOpen || st.Offline) && st.Err() == nil {
			t.Fatalf("status %s is said ready", st)
		}
		if p4&0x60 != 0 && !errors.Is(st.Err(), ErrPaperEnd) {
			t.Fatalf("paper end bits %#x give %v", p4, st.Err())
		}
	})
}
