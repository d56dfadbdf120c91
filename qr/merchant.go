package qr

import "github.com/posagent/posagent"

// Merchant is the summary of a merchant-presented code: what a cashier or a technician wants
// to see, taken from the data objects. Fields are empty when the code does not carry them.
type Merchant struct {
	Name     string `json:"name"`
	City     string `json:"city"`
	Country  string `json:"country"`
	MCC      string `json:"mcc"`
	Currency string `json:"currency"`
	// CurrencyCode is the ISO 4217 alphabetic code of Currency, when known ("CNY").
	CurrencyCode string `json:"currency_code,omitempty"`
	// Amount as written in tag 54; empty for a static code without an amount.
	Amount string `json:"amount,omitempty"`
	// Initiation is "static" (01 = 11), "dynamic" (12) or empty.
	Initiation string `json:"initiation,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	// Tip describes tag 55: "prompt", "fixed" (Fee in 56) or "percentage" (Fee in 57).
	Tip string `json:"tip,omitempty"`
	Fee string `json:"fee,omitempty"`
	// Schemes are the payment schemes the code can be paid with, in payload order, named by
	// the classification table; an unknown template shows its globally unique identifier.
	Schemes []string `json:"schemes"`
	// Reference fields from the additional data template (62), when present.
	BillNumber string `json:"bill_number,omitempty"`
	Reference  string `json:"reference,omitempty"`
	Store      string `json:"store,omitempty"`
	Terminal   string `json:"terminal,omitempty"`
	Purpose    string `json:"purpose,omitempty"`
	// Alternate-language name and city from the language template (64).
	AltLanguage string `json:"alt_language,omitempty"`
	AltName     string `json:"alt_name,omitempty"`
	AltCity     string `json:"alt_city,omitempty"`
}

// primitiveSchemes names the merchant account primitives 02–25, as EMVCo assigns them.
func primitiveScheme(n int) posagent.Scheme {
	switch {
	case n <= 3:
		return posagent.SchemeVisa
	case n <= 5:
		return posagent.SchemeMastercard
	case n <= 8:
		return posagent.SchemeEMVCo
	case n <= 10:
		return posagent.SchemeDiscover
	case n <= 12:
		return posagent.SchemeAmex
	case n <= 14:
		return posagent.SchemeJCB
	case n <= 16:
		return posagent.SchemeUnionPay
	}
	return posagent.SchemeEMVCo
}

// Merchant summarises the code with the built-in classification table.
func (m *MPM) Merchant() Merchant { return m.MerchantWith(DefaultTable()) }

// MerchantWith summarises the code, naming schemes with the given table.
func (m *MPM) MerchantWith(t *Table) Merchant {
	s := Merchant{
		Name:        m.value("59"),
		City:        m.value("60"),
		Country:     m.value("58"),
		MCC:         m.value("52"),
		Currency:    m.value("53"),
		Amount:      m.value("54"),
		PostalCode:  m.value("61"),
		BillNumber:  m.value("62", "01"),
		Store:       m.value("62", "03"),
		Reference:   m.value("62", "05"),
		Terminal:    m.value("62", "07"),
		Purpose:     m.value("62", "08"),
		AltLanguage: m.value("64", "00"),
		AltName:     m.value("64", "01"),
		AltCity:     m.value("64", "02"),
		Schemes:     []string{},
	}
	if c, err := posagent.LookupCurrency(s.Currency); err == nil && s.Currency != "" {
		s.CurrencyCode = c.Code
	}
	switch m.value("01") {
	case "11":
		s.Initiation = "static"
	case "12":
		s.Initiation = "dynamic"
	}
	switch m.value("55") {
	case "01":
		s.Tip = "prompt"
	case "02":
		s.Tip, s.Fee = "fixed", m.value("56")
	case "03":
		s.Tip, s.Fee = "percentage", m.value("57")
	}
	seen := map[string]bool{}
	for _, o := range m.Objects {
		n := idNum(o.ID)
		var name string
		switch {
		case n >= 2 && n <= 25:
			name = string(primitiveScheme(n))
		case n >= 26 && n <= 51:
			gui, _ := o.Get("00")
			if name = t.schemeForGUI(gui.Value); name == "" {
				name = gui.Value
			}
		}
		if name != "" && !seen[name] {
			seen[name] = true
			s.Schemes = append(s.Schemes, name)
		}
	}
	return s
}
