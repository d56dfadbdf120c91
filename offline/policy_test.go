package offline

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"gopkg.in/yaml.v3"
)

func TestFormatAmount(t *testing.T) {
	jpy, _ := posagent.LookupCurrency("JPY")
	bhd, _ := posagent.LookupCurrency("BHD")
	tests := []struct {
		minor int64
		cur   posagent.Currency
		want  string
	}{
		{495000, cny, "4,950.00"}, {500000, cny, "5,000.00"}, {5, cny, "0.05"}, {99999, cny, "999.99"},
		{123456789, cny, "1,234,567.89"}, {1000, jpy, "1,000"}, {999, jpy, "999"}, {-123456, cny, "-1,234.56"},
		{1234567, bhd, "1,234.567"},
	}
	for _, tt := range tests {
		if got := FormatAmount(tt.minor, tt.cur); got != tt.want {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", tt.minor, tt.cur, got, tt.want)
		}
	}
}

func TestPolicy_Check(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	p := Policy{
		Methods:  []posagent.Method{posagent.MethodEMVCPM},
		Limits:   map[string]Limit{"CNY": {PerTransaction: 50000, Outstanding: 500000}},
		MaxCount: 10,
		MaxAge:   72 * time.Hour,
	}
	usd, _ := posagent.LookupCurrency("USD")
	amt := func(m int64) posagent.Amount { return posagent.Amount{Minor: m, Currency: cny} }
	tests := []struct {
		name   string
		method posagent.Method
		amount posagent.Amount
		out    Outstanding
		code   string
		msg    string
	}{
		{"ok", posagent.MethodEMVCPM, amt(5000), Outstanding{Amounts: map[string]int64{"CNY": 495000}, Count: 9, Oldest: now}, "", ""},
		{"wallet", posagent.MethodWalletCode, amt(5000), Outstanding{}, RefuseMethod, "wallet payment code payments cannot be accepted offline"},
		{"currency", posagent.MethodEMVCPM, posagent.Amount{Minor: 100, Currency: usd}, Outstanding{}, RefuseCurrency, "offline sales in USD are not allowed"},
		{"per sale", posagent.MethodEMVCPM, amt(50001), Outstanding{}, RefusePerSale, "offline limit per sale is 500.00 CNY; this sale is 500.01 CNY"},
		{"outstanding", posagent.MethodEMVCPM, amt(5001), Outstanding{Amounts: map[string]int64{"CNY": 495000}, Count: 1, Oldest: now},
			RefuseOutstanding, "offline limit reached: 4,950.00 of 5,000.00 CNY outstanding"},
		{"count", posagent.MethodEMVCPM, amt(1), Outstanding{Amounts: map[string]int64{"CNY": 10}, Count: 10, Oldest: now}, RefuseCount, "offline limit reached: 10 of 10 sales outstanding"},
		{"age", posagent.MethodEMVCPM, amt(1), Outstanding{Amounts: map[string]int64{"CNY": 10}, Count: 1, Oldest: now.Add(-80*time.Hour - 30*time.Minute)},
			RefuseAge, "offline for too long: the oldest unsent sale is 80h30m old (limit 72h); reconnect to send it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Check(tt.method, tt.amount, tt.out, now)
			if tt.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("err %v, want a Refusal", err)
			}
			if got, want := r.Code, tt.code; got != want {
				t.Errorf("code %q, want %q", got, want)
			}
			if got, want := r.Error(), tt.msg; got != want {
				t.Errorf("message %q, want %q", got, want)
			}
		})
	}
	if err := (Policy{}).Check(posagent.MethodEMVCPM, amt(1), Outstanding{}, now); !errors.Is(err, ErrPolicy) {
		t.Error("the zero policy allowed an offline sale")
	}
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`
methods: [emv-cpm, wallet-code]
max_count: 50
max_age: 48h
limits:
  CNY: {per_transaction: 500.00, outstanding: "5000"}
  JPY: {per_transaction: 10000, outstanding: 100000}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Methods) != 2 || p.MaxCount != 50 || p.MaxAge != 48*time.Hour ||
		p.Limits["CNY"] != (Limit{50000, 500000}) || p.Limits["JPY"] != (Limit{10000, 100000}) {
		t.Errorf("parsed %+v", p)
	}
	if p, err := ParsePolicy(nil); err != nil || p.MaxCount != 0 || p.Methods != nil {
		t.Errorf("empty: %+v, %v", p, err)
	}
}

func TestParsePolicy_Errors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"max_cont: 3", `line 1: unknown field "max_cont"`},
		{"limits:\n  CNY: {per_transaction: 1, outstandin: 5}", `unknown field "limits.CNY.outstandin"`},
		{"methods: [bitcoin]", `methods: unknown method "bitcoin"`},
		{"max_age: 3 days", `max_age: "3 days" is not a duration`},
		{"max_count: -1", "max_count: -1 is negative"},
		{"max_count: many", "max_count"},
		{"limits:\n  XXX: {per_transaction: 1, outstanding: 5}", `limits: "XXX" is not an ISO 4217`},
		{"limits:\n  cny: {per_transaction: 1, outstanding: 5}", `limits: "cny" is not an ISO 4217`},
		{"limits:\n  CNY: {per_transaction: '1,000', outstanding: 5}", `limits.CNY.per_transaction: amount "1,000"`},
		{"limits:\n  CNY: {per_transaction: 1.234, outstanding: 5}", "limits.CNY.per_transaction: amount"},
		{"limits:\n  CNY: {outstanding: 5}", "limits.CNY.per_transaction is missing"},
		{"limits:\n  CNY: {per_transaction: 10, outstanding: 5}", "per_transaction 10.00 is more than outstanding 5.00"},
		{"[1, 2]", "must be a mapping"},
		{"max_count: 1\nmax_count: 2", "twice"},
		{"limits: {CNY: 5}", "limits.CNY must be a mapping"},
	}
	for _, tt := range tests {
		_, err := ParsePolicy([]byte(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParsePolicy(%q) = %v, want error containing %q", tt.in, err, tt.want)
			continue
		}
		if !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("ParsePolicy(%q): %v is not ErrInvalidInput", tt.in, err)
		}
	}
}

// The agent's config embeds the policy; its errors keep their field names.
func TestPolicy_UnmarshalYAMLEmbedded(t *testing.T) {
	var cfg struct {
		Offline Policy `yaml:"offline"`
	}
	err := yaml.Unmarshal([]byte("offline:\n  methods: [emv-cpm]\n  max_count: 5\n  limits: {CNY: {per_transaction: 1, outstanding: 2}}\n"), &cfg)
	if err != nil || cfg.Offline.MaxCount != 5 || cfg.Offline.Limits["CNY"].Outstanding != 200 {
		t.Fatalf("%+v, %v", cfg.Offline, err)
	}
	err = yaml.Unmarshal([]byte("offline:\n  max_counts: 5\n"), &cfg)
	if err == nil || !strings.Contains(err.Error(), `line 2: unknown field "max_counts"`) {
		t.Errorf("embedded unknown field: %v", err)
	}
}
