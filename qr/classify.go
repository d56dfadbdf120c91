package qr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is what a scanned code is.
type Kind string

const (
	KindMPM         Kind = "emv-mpm"      // EMVCo merchant-presented code ("000201…")
	KindCPM         Kind = "emv-cpm"      // EMVCo consumer-presented code (base64 "hQVDUFYw…")
	KindWalletCode  Kind = "wallet-code"  // a wallet's one-time payment code (digits)
	KindMerchantURL Kind = "merchant-url" // a wallet's merchant code as a URL
	KindUnknown     Kind = "unknown"      // none of the above; Reason says why
)

// Classification is what the classifier made of one scanned code.
type Classification struct {
	Kind Kind `json:"kind"`
	// Scheme is the wallet or scheme ("wechat-pay", "alipay", "unionpay", "e-cny", …);
	// for a merchant-presented code, the first of Schemes.
	Scheme string `json:"scheme,omitempty"`
	// Name is the scheme's display name, when the table has one.
	Name string `json:"name,omitempty"`
	// OnlineOnly is true when the code can only be honoured with the acquirer reachable
	// (wallet payment codes, URL codes); e-CNY and EMV CPM codes can be captured offline
	// where the risk policy allows.
	OnlineOnly bool `json:"online_only"`
	// Schemes lists every scheme a merchant-presented code names.
	Schemes []string `json:"schemes,omitempty"`
	// AIM is the AIM symbology identifier the scanner prefixed and the classifier
	// stripped ("]Q1" for a QR code), if any.
	AIM string `json:"aim,omitempty"`
	// Masked shows the code with the middle hidden, safe for logs and screens.
	Masked string `json:"masked"`
	// Reason explains an unknown classification, or what was lenient about a known one.
	Reason string `json:"reason,omitempty"`
	// Code is the cleaned code (noise and AIM identifier removed). For wallet and CPM codes
	// it is a payment credential: never log it, never put it in an error.
	Code string `json:"-"`
}

// Classifier tells scanned codes apart with a Table.
type Classifier struct {
	Table *Table
}

// maxCode bounds what the classifier looks at; longer input is unknown.
const maxCode = MaxPayload

// Classify classifies a code with the built-in table.
func Classify(raw string) Classification {
	return (&Classifier{Table: DefaultTable()}).Classify(raw)
}

// Classify tells what raw is: it first removes scanner noise (surrounding white space, a
// trailing CR/LF, an AIM identifier such as "]Q1", spaces and dashes inside an all-digit
// code) and then checks, in order: EMV MPM, EMV CPM, wallet payment code, URL merchant code.
// It never fails: anything it cannot place is KindUnknown with a Reason.
func (c *Classifier) Classify(raw string) Classification {
	t := c.Table
	if t == nil {
		t = DefaultTable()
	}
	if len(raw) > maxCode {
		return Classification{Kind: KindUnknown, Reason: fmt.Sprintf("code is %d bytes, more than any QR code holds", len(raw))}
	}
	code, aim := Clean(raw)
	cl := Classification{Kind: KindUnknown, AIM: aim, Code: code, Masked: Mask(code)}
	switch {
	case code == "":
		cl.Reason = "empty code"
	case !utf8.ValidString(code):
		cl.Reason = "code is not valid UTF-8 text"
	case strings.HasPrefix(code, "000201") || strings.HasPrefix(code, "0002"):
		c.classifyMPM(&cl, t)
	case strings.HasPrefix(code, "hQVDUFYw"):
		c.classifyCPM(&cl, t)
	case allDigits(code):
		c.classifyDigits(&cl, t)
	default:
		c.classifyURL(&cl, t)
	}
	return cl
}

func (c *Classifier) classifyMPM(cl *Classification, t *Table) {
	m, err := ParseMPM(cl.Code, Lenient)
	if err != nil {
		cl.Reason = "looks like an EMV merchant-presented code, but " + err.Error()
		return
	}
	s := m.MerchantWith(t)
	cl.Kind, cl.OnlineOnly, cl.Schemes = KindMPM, true, s.Schemes
	cl.Masked = cl.Code // a merchant code is public
	if len(s.Schemes) > 0 {
		cl.Scheme = s.Schemes[0]
	}
	if n := len(m.Warnings); n > 0 {
		cl.Reason = fmt.Sprintf("read leniently: %d rule(s) broken, first: %s", n, m.Warnings[0])
	}
}

func (c *Classifier) classifyDigits(cl *Classification, t *Table) {
	for _, w := range t.Wallets {
		if len(cl.Code) < w.MinLen || len(cl.Code) > w.MaxLen {
			continue
		}
		for _, p := range w.Prefixes {
			if strings.HasPrefix(cl.Code, p) {
				cl.Kind, cl.Scheme, cl.Name, cl.OnlineOnly = KindWalletCode, w.Scheme, w.Name, w.OnlineOnly
				return
			}
		}
	}
	prefix := cl.Code
	if len(prefix) > 2 {
		prefix = prefix[:2]
	}
	cl.Reason = fmt.Sprintf("%d-digit code with prefix %s matches no wallet in the classification table", len(cl.Code), prefix)
}

func (c *Classifier) classifyURL(cl *Classification, t *Table) {
	lower := strings.ToLower(cl.Code)
	for _, u := range t.URLs {
		if strings.HasPrefix(lower, strings.ToLower(u.Prefix)) {
			cl.Kind, cl.Scheme, cl.Name, cl.OnlineOnly = KindMerchantURL, u.Scheme, u.Name, true
			cl.Masked = cl.Code
			return
		}
	}
	if i := strings.Index(lower, "://"); i > 0 {
		cl.Reason = fmt.Sprintf("URL %q is not a known wallet's merchant code", truncate(cl.Code, 40))
		return
	}
	cl.Reason = "not an EMV code, a wallet payment code or a known merchant URL"
}

// Clean removes scanner noise from a scanned code: surrounding white space and control
// characters (a trailing CR/LF/TAB suffix), an AIM symbology identifier ("]" + symbology
// letter + modifier, e.g. "]Q1"), which it returns, and spaces or dashes inside an
// otherwise all-digit code (wallets show payment codes in groups of four).
func Clean(raw string) (code, aim string) {
	code = strings.TrimFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7F })
	if len(code) >= 3 && code[0] == ']' && isAIMChar(code[1]) && isAIMChar(code[2]) {
		aim, code = code[:3], code[3:]
	}
	if strings.ContainsAny(code, " -") {
		squeezed := strings.NewReplacer(" ", "", "-", "").Replace(code)
		if allDigits(squeezed) {
			code = squeezed
		}
	}
	return code, aim
}

func isAIMChar(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || isDigit(c)
}

// Mask hides the middle of a code for logs and screens: the first 6 and last 4 characters
// of long codes stay visible ("134567********1234"); shorter codes keep less.
func Mask(code string) string {
	r := []rune(code)
	n := len(r)
	keepHead, keepTail := 6, 4
	switch {
	case n <= 4:
		return strings.Repeat("*", n)
	case n < 12:
		keepHead, keepTail = 2, 2
	}
	return string(r[:keepHead]) + strings.Repeat("*", n-keepHead-keepTail) + string(r[n-keepTail:])
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
