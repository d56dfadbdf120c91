package posagent

import (
	"fmt"
	"strconv"
	"strings"
)

// Currency is an ISO 4217 currency: its alphabetic code ("CNY"), its numeric code ("156",
// as EMV QR codes carry it) and the number of digits of its minor unit (2 for CNY, 0 for
// JPY).
type Currency struct {
	Code    string // alphabetic, e.g. "CNY"
	Numeric string // three digits, e.g. "156"
	Minor   int    // digits after the decimal mark
}

// String returns the alphabetic code.
func (c Currency) String() string { return c.Code }

// currencies is the subset of ISO 4217 a payment terminal in the aggregated-payment world
// meets: the currencies of the countries with national EMV QR schemes, plus the majors.
var currencies = []Currency{
	{"AED", "784", 2}, {"AUD", "036", 2}, {"BDT", "050", 2}, {"BRL", "986", 2},
	{"BTN", "064", 2}, {"CAD", "124", 2}, {"CHF", "756", 2}, {"CLP", "152", 0},
	{"CNY", "156", 2}, {"COP", "170", 2}, {"EUR", "978", 2}, {"GBP", "826", 2},
	{"HKD", "344", 2}, {"IDR", "360", 2}, {"INR", "356", 2}, {"JPY", "392", 0},
	{"KHR", "116", 2}, {"KRW", "410", 0}, {"LAK", "418", 2}, {"LKR", "144", 2},
	{"MMK", "104", 2}, {"MNT", "496", 2}, {"MOP", "446", 2}, {"MXN", "484", 2},
	{"MYR", "458", 2}, {"NPR", "524", 2}, {"NZD", "554", 2}, {"PEN", "604", 2},
	{"PHP", "608", 2}, {"PKR", "586", 2}, {"RUB", "643", 2}, {"SAR", "682", 2},
	{"SGD", "702", 2}, {"THB", "764", 2}, {"TWD", "901", 2}, {"UAH", "980", 2},
	{"USD", "840", 2}, {"UZS", "860", 2}, {"VND", "704", 0}, {"ZAR", "710", 2},
	{"KES", "404", 2}, {"NGN", "566", 2}, {"EGP", "818", 2}, {"TRY", "949", 2},
	{"BHD", "048", 3}, {"KWD", "414", 3}, {"OMR", "512", 3}, {"JOD", "400", 3},
}

// LookupCurrency finds a currency by its alphabetic ("cny", case-insensitive) or numeric
// ("156") ISO 4217 code. The error wraps ErrUnsupported.
func LookupCurrency(code string) (Currency, error) {
	up := strings.ToUpper(strings.TrimSpace(code))
	for _, c := range currencies {
		if c.Code == up || c.Numeric == up {
			return c, nil
		}
	}
	return Currency{}, &Error{Kind: ErrUnsupported, Msg: fmt.Sprintf("currency %q is not a known ISO 4217 code", code)}
}

// Amount is money in integer minor units of a currency: Amount{1250, CNY} is 12.50 yuan.
// Money is never a float.
type Amount struct {
	Minor    int64
	Currency Currency
}

// String formats the amount as a decimal with the currency's minor digits, "12.50".
func (a Amount) String() string {
	return FormatMinor(a.Minor, a.Currency.Minor)
}

// FormatMinor formats minor units as a decimal string with digits after the mark:
// FormatMinor(1250, 2) is "12.50", FormatMinor(-5, 2) is "-0.05", FormatMinor(7, 0) is "7".
func FormatMinor(minor int64, digits int) string {
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = uint64(-minor)
	}
	s := strconv.FormatUint(u, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseDecimal reads a non-negative decimal amount ("12.5", "12.50", "12.", "12") into
// minor units with the given number of minor digits. It refuses signs, exponents,
// separators and more decimals than the currency has; the error wraps ErrInvalidInput.
func ParseDecimal(s string, digits int) (int64, error) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, Invalidf("amount %q has no digits", s)
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return 0, Invalidf("amount %q must be digits with at most one '.'", s)
			}
		}
	}
	if len(frac) > digits {
		return 0, Invalidf("amount %q has %d decimals, the currency has %d", s, len(frac), digits)
	}
	frac += strings.Repeat("0", digits-len(frac))
	if whole == "" {
		whole = "0"
	}
	v, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, Invalidf("amount %q is too large", s)
	}
	return v, nil
}
