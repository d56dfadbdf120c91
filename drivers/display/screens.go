package display

import (
	"strings"

	"github.com/posagent/posagent"
)

// Fit makes text displayable on one line: characters outside printable ASCII (which
// the display's default character set does not have) become '?', control characters
// spaces, runs of white space one space; text longer than Cols is cut, at a word boundary
// when one is near, and marked with "..".
func Fit(text string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.TrimSpace(text) {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		case r < 0x20 || r == 0x7F:
			b.WriteByte(' ')
		case r > 0x7E:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		space = false
	}
	s := b.String()
	if len(s) <= Cols {
		return s
	}
	cut := Cols - 2
	if i := strings.LastIndexByte(s[:cut+1], ' '); i >= Cols/2 {
		cut = i
	}
	return strings.TrimRight(s[:cut], " ") + ".."
}

// Row lays out a label on the left and a value on the right of one line. The value is
// what matters (an amount): the label is shortened first, then dropped, so the value stays
// whole; a value longer than the line shows as "#" characters rather than a wrong number.
func Row(label, value string) string {
	value = strings.TrimSpace(value)
	if len(value) > Cols {
		return strings.Repeat("#", Cols)
	}
	room := Cols - len(value) - 1 // one space between
	label = Fit(label)
	if room < 1 {
		return strings.Repeat(" ", Cols-len(value)) + value
	}
	if len(label) > room {
		if room >= 3 {
			label = strings.TrimRight(label[:room-1], " ") + "."
		} else {
			label = ""
		}
	}
	return label + strings.Repeat(" ", Cols-len(label)-len(value)) + value
}

// FormatAmount shows an amount as "CNY 12.50", or without the currency code when that
// would not fit on the line.
func FormatAmount(a posagent.Amount) string {
	s := a.String()
	if a.Currency.Code != "" && len(s)+4 <= Cols {
		return a.Currency.Code + " " + s
	}
	return s
}

// TotalScreen shows the amount to pay: "TOTAL" and the amount on the right.
func TotalScreen(a posagent.Amount) Screen {
	return Screen{"TOTAL", Row("", FormatAmount(a))}
}

// ScanScreen asks the customer to show a payment code, with the amount below.
func ScanScreen(a posagent.Amount) Screen {
	return Screen{"Scan your code", Row("Total", FormatAmount(a))}
}

// ApprovedScreen confirms the payment and its amount.
func ApprovedScreen(a posagent.Amount) Screen {
	return Screen{"APPROVED", Row("Paid", FormatAmount(a))}
}

// DeclinedScreen shows that the payment was declined and why. The reason goes on the
// second line, fitted; a reason that the first line's "DECLINED: " leaves room for
// is shown there whole instead.
func DeclinedScreen(reason string) Screen {
	r := Fit(reason)
	if r == "" {
		return Screen{"DECLINED", ""}
	}
	if len("DECLINED: ")+len(r) <= Cols {
		return Screen{"DECLINED: " + r, ""}
	}
	return Screen{"DECLINED", Fit(reason)}
}
