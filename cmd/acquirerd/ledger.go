package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/sync/wire"
)

// ledgerFlush is how many table rows are aligned together before they are written: the
// table streams, so a big ledger is never held in memory.
const ledgerFlush = 1000

// ledgerCommand is `acquirerd ledger`: every sale the acquirer knows, as JSON lines
// (wire.LedgerEntry) or an aligned table.
func ledgerCommand(dsn, keyFile *string, stdout io.Writer) *cobra.Command {
	var terminal string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ledger --db DSN [--terminal T] [--json]",
		Short: "Print the money as the acquirer holds it: one line per sale",
		Long: `ledger prints every sale the acquirer knows, ordered by terminal and sequence:
online authorizations (state approved, declined, pending_customer or reversed), uploaded
offline records (approved or declined by the results feed), records the terminal ended
without the acquirer (canceled: voided; failed, declined: as the terminal says; approved
but never authorized here: unauthorized) and merchant-presented sales (approved when their
order is paid, else the order's state: closed, or refunded when the acquirer refunded a
payment that raced the order's close). captured is what the customer pays now: the amount
less refunded when approved, else 0; refunded is the sum of the sale's approved refunds
(online or refund records decided at upload), or the whole amount of a refunded order.
Refund records are not listed as sales: they show in their sale's refunded. With --json,
one object per line:

  {"terminal":"T1","sequence":42,"sale_id":"…","idempotency_key":"k-42","amount":1250,
   "currency":"CNY","state":"approved","captured":1250,"refunded":0,"source":"online"}

It only reads the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *dsn == "" {
				return usageError{errors.New("ledger needs --db sqlite:PATH or postgres://…")}
			}
			if path, ok := strings.CutPrefix(*dsn, "sqlite:"); ok {
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("ledger: no acquirer store at %s: %w", path, err)
				}
			}
			store, err := openStore(cmd.Context(), *dsn, *keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			if asJSON {
				enc := json.NewEncoder(stdout)
				return store.Ledger(cmd.Context(), terminal, func(e wire.LedgerEntry) error { return enc.Encode(e) })
			}
			return printLedger(stdout, func(fn func(wire.LedgerEntry) error) error {
				return store.Ledger(cmd.Context(), terminal, fn)
			})
		},
	}
	cmd.Flags().StringVar(&terminal, "terminal", "", "only this terminal's sales")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line (wire.LedgerEntry) instead of a table")
	return cmd
}

// printLedger writes the entries list yields as a table, amounts in the currency's units,
// then the count and what is captured per currency.
func printLedger(w io.Writer, list func(func(wire.LedgerEntry) error) error) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := "TERMINAL\tSEQ\tSALE ID\tKEY\tAMOUNT\tCUR\tSTATE\tCAPTURED\tREFUNDED\tSOURCE\t\n"
	io.WriteString(tw, header)
	n := 0
	captured := map[string]int64{}
	err := list(func(e wire.LedgerEntry) error {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", e.Terminal, e.Sequence, e.SaleID, e.IdempotencyKey,
			money(e.Amount, e.Currency), e.Currency, e.State, money(e.Captured, e.Currency), money(e.Refunded, e.Currency), e.Source)
		n++
		captured[e.Currency] += e.Captured
		if n%ledgerFlush == 0 {
			return tw.Flush()
		}
		return nil
	})
	if ferr := tw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	var totals []string
	for cur, v := range captured {
		totals = append(totals, money(v, cur)+" "+cur)
	}
	sort.Strings(totals)
	if len(totals) == 0 {
		totals = []string{"nothing"}
	}
	_, err = fmt.Fprintf(w, "%d sales; captured %s\n", n, strings.Join(totals, ", "))
	return err
}

// money formats minor units in the currency's units (1250 CNY is 12.50); an unknown
// currency keeps the minor units.
func money(minor int64, currency string) string {
	c, err := posagent.LookupCurrency(currency)
	if err != nil {
		return fmt.Sprint(minor)
	}
	return posagent.FormatMinor(minor, c.Minor)
}
