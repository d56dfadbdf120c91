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
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/sync/wire"
)

// totalsCommand is `acquirerd totals`: a terminal's counts and amounts for a period, as
// GET /v1/terminals/{terminal}/totals answers them (wire.Totals).
func totalsCommand(dsn, keyFile *string, stdout io.Writer) *cobra.Command {
	var terminal, from, to string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "totals --db DSN --terminal T --from T1 --to T2 [--json]",
		Short: "Print a terminal's counts and amounts for a period (what its shift report is compared with)",
		Long: `totals prints what the acquirer holds for one terminal's sales captured in [--from, --to)
(RFC 3339 times; the capture time is the journal's captured_at that the terminal sent with
the authorization or the record): every sale by state (the ledger's states: approved,
declined, reversed, pending_customer, voided, closed, refunded, …), the approved ones by
method (wallet-code, emv-cpm, merchant-qr) and scheme (wechat-pay, alipay, …), the
approved refunds whose own capture time is in the period (of any sale), and the net
captured per currency: approved sales less those refunds. Refund records are not sales.
With --json, one wire.Totals object:

  {"terminal":"T1","from":"…","to":"…","sales":{"count":3,"amount":{"CNY":3650}},
   "by_method":{"wallet-code":{…}},"by_scheme":{…},"by_state":{"approved":{…},…},
   "refunds":{"count":1,"amount":{"CNY":400}},"captured":{"CNY":2000}}

It only reads the store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if *dsn == "" || terminal == "" || from == "" || to == "" {
				return usageError{errors.New("totals needs --db, --terminal, --from and --to")}
			}
			start, err := time.Parse(time.RFC3339, from)
			if err != nil {
				return usageError{fmt.Errorf("--from %q must be an RFC 3339 time, e.g. 2026-12-01T08:00:00+08:00", from)}
			}
			end, err := time.Parse(time.RFC3339, to)
			if err != nil {
				return usageError{fmt.Errorf("--to %q must be an RFC 3339 time, e.g. 2026-12-01T20:00:00+08:00", to)}
			}
			if !start.Before(end) {
				return usageError{errors.New("--from must be before --to: the period is [from, to)")}
			}
			if path, ok := strings.CutPrefix(*dsn, "sqlite:"); ok {
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("totals: no acquirer store at %s: %w", path, err)
				}
			}
			store, err := openStore(cmd.Context(), *dsn, *keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			t, err := store.Totals(cmd.Context(), terminal, start, end)
			if err != nil {
				return fmt.Errorf("totals: %w", err)
			}
			if asJSON {
				return json.NewEncoder(stdout).Encode(t)
			}
			return printTotals(stdout, t)
		},
	}
	cmd.Flags().StringVar(&terminal, "terminal", "", "the terminal")
	cmd.Flags().StringVar(&from, "from", "", "start of the period, included (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "end of the period, excluded (RFC 3339)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object (wire.Totals) instead of a table")
	return cmd
}

// printTotals writes t as a table: one row per group, amounts in the currency's units.
func printTotals(w io.Writer, t wire.Totals) error {
	fmt.Fprintf(w, "terminal %s, captured from %s to %s\n", t.Terminal, t.From.Format(time.RFC3339), t.To.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	io.WriteString(tw, "GROUP\tKEY\tCOUNT\tAMOUNT\t\n")
	row := func(group, key string, tl wire.Tally) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t\n", group, key, tl.Count, amounts(tl.Amount))
	}
	row("sales", "all", t.Sales)
	for _, g := range []struct {
		name string
		m    map[string]wire.Tally
	}{{"state", t.ByState}, {"method", t.ByMethod}, {"scheme", t.ByScheme}} {
		keys := make([]string, 0, len(g.m))
		for k := range g.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row(g.name, k, g.m[k])
		}
	}
	row("refunds", "approved", t.Refunds)
	fmt.Fprintf(tw, "captured\tnet\t\t%s\t\n", amounts(t.Captured))
	return tw.Flush()
}

// amounts formats amounts by currency, e.g. "36.50 CNY, 10.00 USD"; "0" when none.
func amounts(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	var out []string
	for cur, v := range m {
		out = append(out, money(v, cur)+" "+cur)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
