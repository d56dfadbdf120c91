package posagent

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const designReceipt = `{"currency": "CNY",
 "header": ["便利店 Corner Shop", "No. 1 Example Road"],
 "items": [{"name": "矿泉水 Water 550ml", "quantity": 2, "unit_price": 300, "amount": 600}],
 "totals": [{"label": "合计 Total", "amount": 600}],
 "payments": [{"label": "WeChat Pay", "amount": 600}],
 "lines": ["free text"],
 "qr": "a payload to print as a QR code",
 "footer": ["谢谢惠顾 Thank you"]}`

func TestDecodeReceipt(t *testing.T) {
	rc, err := DecodeReceipt(strings.NewReader(designReceipt))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rc.Items[0], (ReceiptItem{"矿泉水 Water 550ml", 2, 300, 600}); got != want {
		t.Errorf("item %+v, want %+v", got, want)
	}
	if rc.QR != "a payload to print as a QR code" || len(rc.Footer) != 1 || rc.Currency != "CNY" {
		t.Errorf("receipt %+v", rc)
	}
}

func TestDecodeReceipt_Errors(t *testing.T) {
	item := func(s string) string { return `{"currency":"CNY","items":[` + s + `]}` }
	tests := []struct {
		name, in, want string
		kind           error
	}{
		{"unknown field", `{"currency":"CNY","lines":["x"],"tip":5}`, `unknown field "tip"`, ErrInvalidInput},
		{"no currency", `{"lines":["x"]}`, "currency is required", ErrInvalidInput},
		{"unknown currency", `{"currency":"XYZ","lines":["x"]}`, `currency "XYZ"`, ErrUnsupported},
		{"lower-case currency", `{"currency":"cny","lines":["x"]}`, "upper-case", ErrInvalidInput},
		{"empty", `{"currency":"CNY"}`, "nothing to print", ErrInvalidInput},
		{"quantity", item(`{"name":"a","quantity":1,"unit_price":1,"amount":1},{"name":"b","quantity":1,"unit_price":1,"amount":1},{"name":"c","quantity":0,"unit_price":1,"amount":0}`), "items[2].quantity must be positive", ErrInvalidInput},
		{"amount", item(`{"name":"a","quantity":3,"unit_price":100,"amount":301}`), "items[0].amount 301 is not quantity × unit_price (3 × 100)", ErrInvalidInput},
		{"no name", item(`{"quantity":1,"unit_price":1,"amount":1}`), "items[0].name is required", ErrInvalidInput},
		{"float", item(`{"name":"a","quantity":1.5,"unit_price":1,"amount":1}`), "items.quantity must be a JSON integer", ErrInvalidInput},
		{"control", `{"currency":"CNY","lines":["ok","a\u001b@b"]}`, "lines[1] has a control character U+001B", ErrInvalidInput},
		{"huge amount", `{"currency":"CNY","totals":[{"label":"x","amount":9000000000000000000}]}`, "totals[0].amount", ErrInvalidInput},
		{"overflowing product", item(`{"name":"a","quantity":1000000,"unit_price":1000000000000000,"amount":1000000000000000}`), "items[0].amount", ErrInvalidInput},
		{"trailing", `{"currency":"CNY","lines":["x"]} {}`, "data after", ErrInvalidInput},
		{"not json", `nope`, "receipt: invalid character", ErrInvalidInput},
		{"empty input", ``, "empty document", ErrInvalidInput},
		{"too big", `{"currency":"CNY","lines":["` + strings.Repeat("x", MaxReceiptBytes) + `"]}`, "more than", ErrInvalidInput},
		{"long line", `{"currency":"CNY","lines":["` + strings.Repeat("字", MaxReceiptText+1) + `"]}`, "lines[0] has 257 characters", ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeReceipt(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, tt.kind) {
				t.Fatalf("err = %v, want one containing %q of kind %v", err, tt.want, tt.kind)
			}
		})
	}
}

func TestReceipt_NegativeItems(t *testing.T) {
	in := `{"currency":"JPY","items":[{"name":"discount","quantity":2,"unit_price":-50,"amount":-100}]}`
	if _, err := DecodeReceipt(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecodeReceipt: no input panics; an accepted receipt obeys the rules and survives
// its own validation again.
func FuzzDecodeReceipt(f *testing.F) {
	f.Add([]byte(designReceipt))
	f.Add([]byte(`{"currency":"CNY","items":[{"name":"a","quantity":-1,"unit_price":-9223372036854775808,"amount":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := DecodeReceipt(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is of no kind", err)
			}
			return
		}
		for i, it := range rc.Items {
			if it.Quantity <= 0 || it.Quantity*it.UnitPrice != it.Amount {
				t.Fatalf("item %d accepted: %+v", i, it)
			}
		}
		if err := rc.Validate(); err != nil {
			t.Fatalf("accepted receipt fails validation: %v", err)
		}
	})
}

// TestDecodeReceipt_Documented: the sample receipt in configs/ and the example in
// docs/receipt.md are accepted by the real decoder, and the page names every field.
func TestDecodeReceipt_Documented(t *testing.T) {
	f, err := os.Open("configs/receipt.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := DecodeReceipt(f); err != nil {
		t.Errorf("configs/receipt.json: %v", err)
	}
	doc, err := os.ReadFile("docs/receipt.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/receipt.md has no JSON example")
	}
	for i, b := range blocks {
		if _, err := DecodeReceipt(bytes.NewReader(b[1])); err != nil {
			t.Errorf("docs/receipt.md example %d: %v", i+1, err)
		}
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[Receipt](), reflect.TypeFor[ReceiptItem](), reflect.TypeFor[ReceiptLine]()} {
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !bytes.Contains(doc, []byte("`"+name+"`")) && !bytes.Contains(doc, []byte("[]."+name+"`")) && !bytes.Contains(doc, []byte(name+",")) && !bytes.Contains(doc, []byte(", "+name+"}")) {
				t.Errorf("docs/receipt.md does not document %s.%s", typ.Name(), name)
			}
		}
	}
}
