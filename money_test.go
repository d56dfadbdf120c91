package posagent

import (
	"errors"
	"testing"
)

func TestFormatMinor(t *testing.T) {
	tests := []struct {
		minor  int64
		digits int
		want   string
	}{
		{1250, 2, "12.50"}, {5, 2, "0.05"}, {-5, 2, "-0.05"}, {0, 2, "0.00"}, {7, 0, "7"}, {1234, 3, "1.234"},
	}
	for _, tt := range tests {
		if got := FormatMinor(tt.minor, tt.digits); got != tt.want {
			t.Errorf("FormatMinor(%d, %d) = %q, want %q", tt.minor, tt.digits, got, tt.want)
		}
	}
}

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in      string
		digits  int
		want    int64
		wantErr bool
	}{
		{"12.50", 2, 1250, false}, {"12.5", 2, 1250, false}, {"12.", 2, 1200, false}, {"12", 2, 1200, false},
		{".5", 2, 50, false}, {"7", 0, 7, false},
		{"12,50", 2, 0, true}, {"1.2.3", 2, 0, true}, {"-1", 2, 0, true}, {"", 2, 0, true}, {".", 2, 0, true},
		{"1e3", 2, 0, true}, {"12.505", 2, 0, true}, {"1.5", 0, 0, true}, {"99999999999999999999", 2, 0, true},
	}
	for _, tt := range tests {
		got, err := ParseDecimal(tt.in, tt.digits)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseDecimal(%q, %d) error = %v, wantErr %v", tt.in, tt.digits, err, tt.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, ErrInvalidInput) {
			t.Errorf("ParseDecimal(%q) error %v does not wrap ErrInvalidInput", tt.in, err)
		}
		if got != tt.want {
			t.Errorf("ParseDecimal(%q, %d) = %d, want %d", tt.in, tt.digits, got, tt.want)
		}
	}
}

func TestLookupCurrency(t *testing.T) {
	for _, code := range []string{"CNY", "cny", "156"} {
		c, err := LookupCurrency(code)
		if err != nil || c.Code != "CNY" || c.Numeric != "156" || c.Minor != 2 {
			t.Errorf("LookupCurrency(%q) = %+v, %v", code, c, err)
		}
	}
	if _, err := LookupCurrency("XXX"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("LookupCurrency(XXX) error = %v, want ErrUnsupported", err)
	}
	if got := (Amount{Minor: 1250, Currency: Currency{Code: "CNY", Minor: 2}}).String(); got != "12.50" {
		t.Errorf("Amount.String() = %q", got)
	}
}
