package qr

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Table is the data behind classification: which digit prefixes and lengths make a wallet
// payment code, which URL prefixes make a merchant code, and which globally unique
// identifiers name a scheme inside an EMV merchant-presented code. Wallets add prefixes,
// so it is data: DefaultTable is built in, LoadTable reads a replacement.
type Table struct {
	Wallets []WalletRule `json:"wallets"`
	URLs    []URLRule    `json:"urls"`
	GUIs    []GUIRule    `json:"guis"`
}

// WalletRule recognises a consumer wallet's payment code: all digits, one of Prefixes,
// and a length from MinLen to MaxLen.
type WalletRule struct {
	Scheme     string   `json:"scheme"`
	Name       string   `json:"name"`
	Prefixes   []string `json:"prefixes"`
	MinLen     int      `json:"min_len"`
	MaxLen     int      `json:"max_len"`
	OnlineOnly bool     `json:"online_only"`
}

// URLRule recognises a URL merchant code by its prefix (scheme and host, case-insensitive).
type URLRule struct {
	Scheme string `json:"scheme"`
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
}

// GUIRule names the scheme of an EMV merchant account template whose globally unique
// identifier starts with GUI (case-insensitive): an AID ("A000000333") or a reverse domain
// name ("BR.GOV.BCB.PIX").
type GUIRule struct {
	Scheme string `json:"scheme"`
	GUI    string `json:"gui"`
}

//go:embed table.json
var defaultTableJSON []byte

var defaultTable = sync.OnceValue(func() *Table {
	t, err := LoadTable(bytes.NewReader(defaultTableJSON))
	if err != nil {
		panic("qr: built-in table.json is invalid: " + err.Error())
	}
	return t
})

// DefaultTable returns the built-in table (qr/table.json). Callers must not modify it.
func DefaultTable() *Table { return defaultTable() }

// LoadTable reads a table in the JSON form of qr/table.json and validates it: every rule
// needs a scheme, wallet prefixes must be digits, lengths must make sense. Unknown fields
// are refused so that a typo does not silently disable a rule.
func LoadTable(r io.Reader) (*Table, error) {
	var doc struct {
		Comment string `json:"comment"`
		Table
	}
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read classification table: %w", err)
	}
	t := doc.Table
	for i, w := range t.Wallets {
		where := fmt.Sprintf("wallets[%d] (%s)", i, w.Scheme)
		switch {
		case w.Scheme == "":
			return nil, fmt.Errorf("classification table: %s: scheme is empty", where)
		case len(w.Prefixes) == 0:
			return nil, fmt.Errorf("classification table: %s: no prefixes", where)
		case w.MinLen < 1 || w.MaxLen < w.MinLen || w.MaxLen > 64:
			return nil, fmt.Errorf("classification table: %s: lengths %d–%d must satisfy 1 ≤ min_len ≤ max_len ≤ 64", where, w.MinLen, w.MaxLen)
		}
		for _, p := range w.Prefixes {
			if !allDigits(p) || len(p) > w.MinLen {
				return nil, fmt.Errorf("classification table: %s: prefix %q must be digits, no longer than min_len", where, p)
			}
		}
	}
	for i, u := range t.URLs {
		if u.Scheme == "" || !strings.Contains(u.Prefix, ":") {
			return nil, fmt.Errorf("classification table: urls[%d]: needs a scheme and a prefix like \"https://host/\", got %q", i, u.Prefix)
		}
	}
	for i, g := range t.GUIs {
		if g.Scheme == "" || g.GUI == "" {
			return nil, fmt.Errorf("classification table: guis[%d]: needs a scheme and a gui", i)
		}
	}
	return &t, nil
}

// schemeForGUI names the scheme of a merchant account's globally unique identifier, or
// returns "" when the table does not know it.
func (t *Table) schemeForGUI(gui string) string {
	for _, g := range t.GUIs {
		if len(gui) >= len(g.GUI) && strings.EqualFold(gui[:len(g.GUI)], g.GUI) {
			return g.Scheme
		}
	}
	return ""
}
