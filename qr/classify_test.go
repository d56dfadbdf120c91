package qr

import (
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name       string
		raw        string
		kind       Kind
		scheme     string
		onlineOnly bool
		aim        string
	}{
		{"WeChat Pay", "134567890123456789", KindWalletCode, "wechat-pay", true, ""},
		{"WeChat Pay Hong Kong", "150000000000000001", KindWalletCode, "wechat-pay", true, ""},
		{"WeChat Pay with AIM and CRLF", "]Q1134567890123456789\r\n", KindWalletCode, "wechat-pay", true, "]Q1"},
		{"Alipay 16 digits", "2812345678901234", KindWalletCode, "alipay", true, ""},
		{"Alipay 24 digits", "251001020123456789012345", KindWalletCode, "alipay", true, ""},
		{"Alipay 18 digits", "286543210987654321", KindWalletCode, "alipay", true, ""},
		{"UnionPay", "6212345678901234567", KindWalletCode, "unionpay", true, ""},
		{"e-CNY", "0112345678901234567", KindWalletCode, "e-cny", false, ""},
		{"grouped digits", " 1345 6789 0123 4567 89 ", KindWalletCode, "wechat-pay", true, ""},
		{"barcode AIM", "]C0134567890123456789\t", KindWalletCode, "wechat-pay", true, "]C0"},
		{"EMV MPM", emvSpecExample, KindMPM, "unionpay", true, ""},
		{"EMV MPM with newline", emvSpecExample + "\n", KindMPM, "unionpay", true, ""},
		{"PromptPay MPM, lenient", "00020101021129370016A000000677010111011300668999999995802TH53037646304FE29", KindMPM, "promptpay", true, ""},
		{"UnionPay URL", "https://qr.95516.com/00010000/01234567890123456789", KindMerchantURL, "unionpay", true, ""},
		{"Alipay URL", "HTTPS://QR.ALIPAY.COM/bax01234abcd", KindMerchantURL, "alipay", true, ""},
		{"WeChat URL", "weixin://wxpay/bizpayurl?pr=abc123", KindMerchantURL, "wechat-pay", true, ""},
		{"WeChat 17 digits", "13456789012345678", KindUnknown, "", false, ""},
		{"WeChat prefix 16", "164567890123456789", KindUnknown, "", false, ""},
		{"Alipay 25 digits", "2512345678901234567890123", KindUnknown, "", false, ""},
		{"MPM with bad CRC", emvSpecExample[:len(emvSpecExample)-4] + "0000", KindUnknown, "", false, ""},
		{"other URL", "https://example.com/pay", KindUnknown, "", false, ""},
		{"text", "hello", KindUnknown, "", false, ""},
		{"empty", " \r\n", KindUnknown, "", false, ""},
		{"invalid UTF-8", "\xff\xfe", KindUnknown, "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.raw)
			if got.Kind != tt.kind || got.Scheme != tt.scheme || got.OnlineOnly != tt.onlineOnly || got.AIM != tt.aim {
				t.Fatalf("Classify(%q) = kind %s scheme %q online_only %v aim %q, want %s %q %v %q (reason %q)",
					tt.raw, got.Kind, got.Scheme, got.OnlineOnly, got.AIM, tt.kind, tt.scheme, tt.onlineOnly, tt.aim, got.Reason)
			}
			if got.Kind == KindUnknown && got.Reason == "" {
				t.Errorf("unknown code without a reason")
			}
			if got.Kind == KindWalletCode && strings.Contains(got.Masked, got.Code[6:len(got.Code)-4]) {
				t.Errorf("masked %q shows the middle of the code", got.Masked)
			}
		})
	}
}

func TestClassifier_CustomTable(t *testing.T) {
	table, err := LoadTable(strings.NewReader(`{"wallets": [{"scheme": "webank", "name": "WeBank", "prefixes": ["5678"], "min_len": 19, "max_len": 19, "online_only": true}], "urls": [], "guis": []}`))
	if err != nil {
		t.Fatal(err)
	}
	c := &Classifier{Table: table}
	if got := c.Classify("5678123456789012345"); got.Kind != KindWalletCode || got.Scheme != "webank" {
		t.Errorf("custom rule not applied: %+v", got)
	}
	if got := c.Classify("134567890123456789"); got.Kind != KindUnknown {
		t.Errorf("table replaced, but WeChat code still classified: %+v", got)
	}
}

func TestLoadTable_Refuses(t *testing.T) {
	tests := map[string]string{
		"unknown field":    `{"wallets": [{"scheme": "x", "prefix": ["1"], "min_len": 1, "max_len": 2}]}`,
		"no scheme":        `{"wallets": [{"prefixes": ["1"], "min_len": 1, "max_len": 2}]}`,
		"letters":          `{"wallets": [{"scheme": "x", "prefixes": ["A"], "min_len": 1, "max_len": 2}]}`,
		"bad lengths":      `{"wallets": [{"scheme": "x", "prefixes": ["1"], "min_len": 5, "max_len": 2}]}`,
		"url without host": `{"urls": [{"scheme": "x", "prefix": "qr"}]}`,
		"not json":         `wallets:`,
	}
	for name, in := range tests {
		if _, err := LoadTable(strings.NewReader(in)); err == nil {
			t.Errorf("%s: LoadTable accepted %s", name, in)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"134567890123456789", "134567********6789"},
		{"1234", "****"},
		{"12345678", "12****78"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestClassify_CPM(t *testing.T) {
	unionPay := "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQgwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
	got := Classify(unionPay)
	if got.Kind != KindCPM || got.Scheme != "unionpay" || got.OnlineOnly {
		t.Fatalf("Classify(UnionPay CPM) = %+v", got)
	}
	if strings.Contains(got.Masked, unionPay[10:len(unionPay)-4]) {
		t.Errorf("CPM shown unmasked: %q", got.Masked)
	}
	bad := Classify("hQVDUFYwMWEaTwegAAAAVVVV")
	if bad.Kind != KindUnknown || !strings.Contains(bad.Reason, "consumer-presented") {
		t.Errorf("truncated CPM = %+v", bad)
	}
}
