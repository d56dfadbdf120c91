package posagent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on a receipt, so that a POS app's bug cannot feed the printer a roll's worth of
// paper or the agent an unbounded document.
const (
	MaxReceiptBytes    = 256 << 10 // the JSON document
	MaxReceiptEntries  = 500       // items, and lines of each other list
	MaxReceiptText     = 256       // characters in one name, label or line
	MaxReceiptQR       = 2048      // bytes of the QR payload
	MaxReceiptQuantity = 1_000_000
	// MaxReceiptAmount bounds every amount (and unit price) in minor units, so that
	// sums and products cannot overflow: 10^15 minor units is 10^13 yuan.
	MaxReceiptAmount = 1_000_000_000_000_000
)

// Receipt is a sales receipt as the POS app sends it (POST /v1/receipts, posagent print).
// Amounts are integer minor units of Currency. Text is printed as given; a printer lays it
// out to its paper width.
type Receipt struct {
	Currency string        `json:"currency"`
	Header   []string      `json:"header,omitempty"`
	Items    []ReceiptItem `json:"items,omitempty"`
	Totals   []ReceiptLine `json:"totals,omitempty"`
	Payments []ReceiptLine `json:"payments,omitempty"`
	Lines    []string      `json:"lines,omitempty"`
	QR       string        `json:"qr,omitempty"`
	Footer   []string      `json:"footer,omitempty"`
}

// ReceiptItem is one line of goods: Amount must equal Quantity × UnitPrice. A negative
// unit price (a discount or a return) is allowed; a quantity is a positive whole number
// (goods sold by weight are sent with the weight in the name and quantity 1).
type ReceiptItem struct {
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"`
	Amount    int64  `json:"amount"`
}

// ReceiptLine is a labelled amount: a total, tax, change or payment.
type ReceiptLine struct {
	Label  string `json:"label"`
	Amount int64  `json:"amount"`
}

// DecodeReceipt reads one receipt as JSON from r and validates it. Unknown fields,
// trailing data, documents over MaxReceiptBytes and invalid receipts are refused with an
// error wrapping ErrInvalidInput (ErrUnsupported for an unknown currency) whose message
// names the field: "items[2].quantity must be positive".
func DecodeReceipt(r io.Reader) (*Receipt, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxReceiptBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read receipt: %w", err)
	}
	if len(data) > MaxReceiptBytes {
		return nil, Invalidf("receipt: more than %d bytes", MaxReceiptBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rc Receipt
	if err := dec.Decode(&rc); err != nil {
		return nil, Invalidf("receipt: %s", jsonMessage(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Invalidf("receipt: data after the JSON object")
	}
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	return &rc, nil
}

// jsonMessage turns encoding/json's errors into messages that name the field.
func jsonMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s must be a JSON %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	s := strings.TrimPrefix(err.Error(), "json: ")
	if errors.Is(err, io.EOF) {
		return "empty document"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	return s
}

func jsonKind(k string) string {
	switch k {
	case "int64", "int", "uint64":
		return "integer"
	case "slice":
		return "array"
	}
	return k
}

// Validate checks the receipt's rules and returns the first broken one, as an error
// wrapping ErrInvalidInput (ErrUnsupported for an unknown currency) naming the field.
func (rc *Receipt) Validate() error {
	cur, err := LookupCurrency(rc.Currency)
	if err != nil {
		if rc.Currency == "" {
			return Invalidf("receipt: currency is required")
		}
		return fmt.Errorf("receipt: %w", err)
	}
	if cur.Code != rc.Currency {
		return Invalidf("receipt: currency %q must be an upper-case ISO 4217 alphabetic code (%s)", rc.Currency, cur.Code)
	}
	if len(rc.Header)+len(rc.Items)+len(rc.Totals)+len(rc.Payments)+len(rc.Lines)+len(rc.Footer) == 0 && rc.QR == "" {
		return Invalidf("receipt: nothing to print")
	}
	lists := []struct {
		name string
		v    []string
	}{{"header", rc.Header}, {"lines", rc.Lines}, {"footer", rc.Footer}}
	for _, l := range lists {
		if len(l.v) > MaxReceiptEntries {
			return Invalidf("receipt: %s has %d lines, more than %d", l.name, len(l.v), MaxReceiptEntries)
		}
		for i, s := range l.v {
			if err := checkText(fmt.Sprintf("%s[%d]", l.name, i), s, true); err != nil {
				return err
			}
		}
	}
	if len(rc.Items) > MaxReceiptEntries {
		return Invalidf("receipt: items has %d entries, more than %d", len(rc.Items), MaxReceiptEntries)
	}
	for i, it := range rc.Items {
		f := fmt.Sprintf("items[%d]", i)
		if err := checkText(f+".name", it.Name, false); err != nil {
			return err
		}
		switch {
		case it.Quantity <= 0:
			return Invalidf("receipt: %s.quantity must be positive, not %d", f, it.Quantity)
		case it.Quantity > MaxReceiptQuantity:
			return Invalidf("receipt: %s.quantity %d is more than %d", f, it.Quantity, MaxReceiptQuantity)
		}
		if err := checkAmount(f+".unit_price", it.UnitPrice); err != nil {
			return err
		}
		if err := checkAmount(f+".amount", it.Amount); err != nil {
			return err
		}
		// |UnitPrice| ≤ 10^15 and Quantity ≤ 10^6 could overflow int64 (9.2·10^18);
		// compare by division instead.
		if it.Amount%it.Quantity != 0 || it.Amount/it.Quantity != it.UnitPrice {
			return Invalidf("receipt: %s.amount %d is not quantity × unit_price (%d × %d)",
				f, it.Amount, it.Quantity, it.UnitPrice)
		}
	}
	for _, l := range []struct {
		name string
		v    []ReceiptLine
	}{{"totals", rc.Totals}, {"payments", rc.Payments}} {
		if len(l.v) > MaxReceiptEntries {
			return Invalidf("receipt: %s has %d entries, more than %d", l.name, len(l.v), MaxReceiptEntries)
		}
		for i, e := range l.v {
			f := fmt.Sprintf("%s[%d]", l.name, i)
			if err := checkText(f+".label", e.Label, false); err != nil {
				return err
			}
			if err := checkAmount(f+".amount", e.Amount); err != nil {
				return err
			}
		}
	}
	if len(rc.QR) > MaxReceiptQR {
		return Invalidf("receipt: qr is %d bytes, more than %d", len(rc.QR), MaxReceiptQR)
	}
	if rc.QR != "" {
		if err := checkChars("qr", rc.QR); err != nil {
			return err
		}
	}
	return nil
}

// checkText checks one printed string: valid UTF-8, bounded, and free of control
// characters, which would otherwise reach the printer as commands (ESC, GS, DLE …).
func checkText(field, s string, emptyOK bool) error {
	if s == "" && !emptyOK {
		return Invalidf("receipt: %s is required", field)
	}
	if n := utf8.RuneCountInString(s); n > MaxReceiptText {
		return Invalidf("receipt: %s has %d characters, more than %d", field, n, MaxReceiptText)
	}
	return checkChars(field, s)
}

func checkChars(field, s string) error {
	if !utf8.ValidString(s) {
		return Invalidf("receipt: %s is not valid UTF-8", field)
	}
	for i, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return Invalidf("receipt: %s has a control character %U at byte %d", field, r, i)
		}
	}
	return nil
}

func checkAmount(field string, v int64) error {
	if v > MaxReceiptAmount || v < -MaxReceiptAmount {
		return Invalidf("receipt: %s %d is out of range (±%d)", field, v, int64(MaxReceiptAmount))
	}
	return nil
}
