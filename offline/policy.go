package offline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/posagent/posagent"
	"gopkg.in/yaml.v3"
)

// Policy is the offline risk policy: which sales the terminal may accept while it cannot
// reach the acquirer. It comes from the agent's config (the `offline:` section, which
// embeds this type) and later from the acquirer.
//
// Its zero value allows nothing offline; every allowance is explicit. A currency without
// a Limit is refused offline, because amounts only mean something in a currency.
type Policy struct {
	// Methods allowed offline. Wallet payment codes are one-time codes the wallet
	// expects to be authorized at once, so DefaultPolicy leaves them out.
	Methods []posagent.Method
	// Limits by ISO 4217 alphabetic code.
	Limits map[string]Limit
	// MaxCount is the most sales outstanding offline at once (0: none allowed).
	MaxCount int
	// MaxAge is how long a sale may wait offline. Older outstanding sales are flagged
	// overdue (never dropped) and, while one exists, new offline sales are refused:
	// the terminal has been cut off for too long. 0 means no age limit.
	MaxAge time.Duration
}

// Limit caps offline sales in one currency, in minor units.
type Limit struct {
	PerTransaction int64 // largest single sale
	Outstanding    int64 // largest total of outstanding sales, this one included
}

// DefaultPolicy is what a terminal uses until its config says otherwise: consumer-presented
// EMV codes only, at most 100 sales for at most 72 hours, and no currency until limits are
// configured (so in effect nothing, but the shape is right for a config to fill in).
func DefaultPolicy() Policy {
	return Policy{
		Methods:  []posagent.Method{posagent.MethodEMVCPM},
		MaxCount: 100,
		MaxAge:   72 * time.Hour,
	}
}

// Outstanding is what the journal holds offline and unsettled (states stored and
// uploading): what the policy weighs a new sale against.
type Outstanding struct {
	Amounts map[string]int64 // minor units by currency
	Count   int
	Oldest  time.Time // capture time of the oldest; zero when Count is 0
}

// Refusal is a sale the policy refuses. Its message is written for the cashier; Code is
// stable for the POS app ("offline_limit", …). errors.Is(err, ErrPolicy) holds.
type Refusal struct {
	Code string
	Msg  string
}

func (r *Refusal) Error() string { return r.Msg }

// Unwrap returns ErrPolicy.
func (r *Refusal) Unwrap() error { return ErrPolicy }

// Refusal codes.
const (
	RefuseMethod      = "offline_method"
	RefuseCurrency    = "offline_currency"
	RefusePerSale     = "offline_sale_limit"
	RefuseOutstanding = "offline_limit"
	RefuseCount       = "offline_count"
	RefuseAge         = "offline_too_long"
)

// Check decides whether a sale of amount in method may be accepted offline now, given what
// is already outstanding. nil means yes; otherwise a *Refusal.
func (p Policy) Check(method posagent.Method, amount posagent.Amount, out Outstanding, now time.Time) error {
	if !slices.Contains(p.Methods, method) {
		return &Refusal{RefuseMethod, fmt.Sprintf("%s payments cannot be accepted offline", methodName(method))}
	}
	cur := amount.Currency
	lim, ok := p.Limits[cur.Code]
	if !ok {
		return &Refusal{RefuseCurrency, fmt.Sprintf("offline sales in %s are not allowed", cur.Code)}
	}
	if amount.Minor > lim.PerTransaction {
		return &Refusal{RefusePerSale, fmt.Sprintf("offline limit per sale is %s %s; this sale is %s %s",
			FormatAmount(lim.PerTransaction, cur), cur.Code, FormatAmount(amount.Minor, cur), cur.Code)}
	}
	have := out.Amounts[cur.Code]
	if have > lim.Outstanding-amount.Minor { // have+amount > limit, without overflow
		return &Refusal{RefuseOutstanding, fmt.Sprintf("offline limit reached: %s of %s %s outstanding",
			FormatAmount(have, cur), FormatAmount(lim.Outstanding, cur), cur.Code)}
	}
	if out.Count >= p.MaxCount {
		return &Refusal{RefuseCount, fmt.Sprintf("offline limit reached: %d of %d sales outstanding", out.Count, p.MaxCount)}
	}
	if p.MaxAge > 0 && out.Count > 0 && now.Sub(out.Oldest) > p.MaxAge {
		return &Refusal{RefuseAge, fmt.Sprintf("offline for too long: the oldest unsent sale is %s old (limit %s); reconnect to send it",
			roundDuration(now.Sub(out.Oldest)), roundDuration(p.MaxAge))}
	}
	return nil
}

func methodName(m posagent.Method) string {
	switch m {
	case posagent.MethodWalletCode:
		return "wallet payment code"
	case posagent.MethodEMVCPM:
		return "EMV QR (consumer-presented)"
	case posagent.MethodMerchantQR:
		return "merchant QR"
	case "":
		return "unknown-method"
	}
	return string(m)
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Minute:
		d = d.Round(time.Second)
	}
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatAmount formats minor units for people: thousands separated by commas, the
// currency's decimals: 495000 CNY is "4,950.00".
func FormatAmount(minor int64, cur posagent.Currency) string {
	s := posagent.FormatMinor(minor, cur.Minor)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}

// The YAML shape, as an operator writes it:
//
//	methods: [emv-cpm]          # wallet-code, emv-cpm, merchant-qr
//	max_count: 100
//	max_age: 72h                # Go duration: 90m, 72h
//	limits:
//	  CNY: {per_transaction: "500.00", outstanding: "5000.00"}
//
// Amounts are decimals in the currency's major unit (quoted or not), as people write
// money; they become minor units with the currency's own number of decimals.
type policyYAML struct {
	Methods  []string             `yaml:"methods"`
	MaxCount *int                 `yaml:"max_count"`
	MaxAge   string               `yaml:"max_age"`
	Limits   map[string]limitYAML `yaml:"limits"`
}

type limitYAML struct {
	PerTransaction string `yaml:"per_transaction"`
	Outstanding    string `yaml:"outstanding"`
}

var knownMethods = []posagent.Method{posagent.MethodWalletCode, posagent.MethodEMVCPM, posagent.MethodMerchantQR}

// ParsePolicy reads a policy from YAML (the shape above). Unknown fields, unknown methods
// and currencies, and malformed amounts or durations are errors that name the field and
// the bad value, e.g. `limits.CNY.outstanding: amount "5,000" must be digits…`; they wrap
// posagent.ErrInvalidInput. Empty input is the zero policy (nothing offline).
func ParsePolicy(data []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var node yaml.Node
	if err := dec.Decode(&node); err != nil {
		if errors.Is(err, io.EOF) {
			return Policy{}, nil
		}
		return Policy{}, posagent.Invalidf("offline policy: %s", yamlMessage(err))
	}
	if err := p.UnmarshalYAML(&node); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// UnmarshalYAML lets a config embed the policy (`offline: {...}`) and still get strict,
// field-naming errors: unknown keys are refused here, whatever the outer decoder does.
func (p *Policy) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			*p = Policy{}
			return nil
		}
		node = node.Content[0]
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		*p = Policy{}
		return nil
	}
	if err := checkKeys(node, "", []string{"methods", "max_count", "max_age", "limits"}); err != nil {
		return err
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == "limits" {
			lim := node.Content[i+1]
			if lim.Kind == yaml.MappingNode {
				for j := 0; j+1 < len(lim.Content); j += 2 {
					if err := checkKeys(lim.Content[j+1], "limits."+lim.Content[j].Value+".", []string{"per_transaction", "outstanding"}); err != nil {
						return err
					}
				}
			}
		}
	}
	// Decode field by field, so a type error names its field.
	var raw policyYAML
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		var dst any
		switch k.Value {
		case "methods":
			dst = &raw.Methods
		case "max_count":
			dst = &raw.MaxCount
		case "max_age":
			dst = &raw.MaxAge
		case "limits":
			dst = &raw.Limits
		}
		if err := v.Decode(dst); err != nil {
			return posagent.Invalidf("offline policy: %s: %s", k.Value, yamlMessage(err))
		}
	}
	out, err := raw.policy()
	if err != nil {
		return err
	}
	*p = out
	return nil
}

func checkKeys(node *yaml.Node, prefix string, known []string) error {
	if node.Kind != yaml.MappingNode {
		if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
			return nil
		}
		what := strings.TrimSuffix(prefix, ".")
		if what == "" {
			what = "the policy"
		}
		return posagent.Invalidf("offline policy: line %d: %s must be a mapping", node.Line, what)
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k := node.Content[i]
		if !slices.Contains(known, k.Value) {
			return posagent.Invalidf("offline policy: line %d: unknown field %q (fields: %s)", k.Line, prefix+k.Value, strings.Join(known, ", "))
		}
		for j := 0; j < i; j += 2 {
			if node.Content[j].Value == k.Value {
				return posagent.Invalidf("offline policy: line %d: field %q given twice", k.Line, prefix+k.Value)
			}
		}
	}
	return nil
}

// yamlMessage shortens yaml.v3's messages ("yaml: unmarshal errors:\n  line 2: …").
func yamlMessage(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	s = strings.TrimPrefix(s, "unmarshal errors:")
	return strings.Join(strings.Fields(s), " ")
}

func (r policyYAML) policy() (Policy, error) {
	var p Policy
	for _, m := range r.Methods {
		method := posagent.Method(m)
		if !slices.Contains(knownMethods, method) {
			return Policy{}, posagent.Invalidf("offline policy: methods: unknown method %q (methods: wallet-code, emv-cpm, merchant-qr)", m)
		}
		if !slices.Contains(p.Methods, method) {
			p.Methods = append(p.Methods, method)
		}
	}
	if r.MaxCount != nil {
		if *r.MaxCount < 0 {
			return Policy{}, posagent.Invalidf("offline policy: max_count: %d is negative", *r.MaxCount)
		}
		p.MaxCount = *r.MaxCount
	}
	if r.MaxAge != "" {
		d, err := time.ParseDuration(r.MaxAge)
		if err != nil || d < 0 {
			return Policy{}, posagent.Invalidf("offline policy: max_age: %q is not a duration like 72h or 90m", r.MaxAge)
		}
		p.MaxAge = d
	}
	codes := make([]string, 0, len(r.Limits))
	for c := range r.Limits {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, code := range codes {
		l := r.Limits[code]
		cur, err := posagent.LookupCurrency(code)
		if err != nil || cur.Code != code {
			return Policy{}, posagent.Invalidf("offline policy: limits: %q is not an ISO 4217 alphabetic currency code like CNY", code)
		}
		if p.Limits == nil {
			p.Limits = make(map[string]Limit)
		}
		var lim Limit
		for _, f := range []struct {
			name, val string
			dst       *int64
		}{{"per_transaction", l.PerTransaction, &lim.PerTransaction}, {"outstanding", l.Outstanding, &lim.Outstanding}} {
			field := "limits." + code + "." + f.name
			if f.val == "" {
				return Policy{}, posagent.Invalidf("offline policy: %s is missing", field)
			}
			v, err := posagent.ParseDecimal(f.val, cur.Minor)
			if err != nil {
				return Policy{}, posagent.Invalidf("offline policy: %s: %v", field, err)
			}
			*f.dst = v
		}
		if lim.PerTransaction > lim.Outstanding {
			return Policy{}, posagent.Invalidf("offline policy: limits.%s: per_transaction %s is more than outstanding %s",
				code, FormatAmount(lim.PerTransaction, cur), FormatAmount(lim.Outstanding, cur))
		}
		p.Limits[code] = lim
	}
	return p, nil
}
