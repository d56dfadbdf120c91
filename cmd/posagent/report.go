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

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/offline"
)

func init() { commands = append(commands, (*Main).reportCommand) }

func (m *Main) reportCommand() *cobra.Command {
	var configPath, key string
	var closeShift, printIt, asJSON bool
	cmd := &cobra.Command{
		Use:   "report [--close] [--print] [--json]",
		Short: "The shift report: X (the current shift), or Z with --close, from the running agent",
		Long: `report asks the running agent (its local API) for the shift report: the journal's
totals of the records captured since the last close (an X report: GET /v1/reports/current),
compared with the acquirer's totals for the same period when the acquirer answers, and
every difference with what it means and what to do.

--close closes the shift (a Z report: POST /v1/reports/close): it is numbered, stored in the
journal (it survives the purge of old records) and printed on the receipt printer when one
is configured. --key makes a retried close return the same Z report instead of closing
another shift. --print prints the X report too.

The agent's address and token come from its config (--config or POSAGENT_CONFIG), with
POSAGENT_API_TOKEN and POSAGENT_LISTEN applied as the agent applies them.

Exit status: 0 the report was made (differences are listed, they are not errors), 1 the
agent could not be asked or refused.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if key != "" && !closeShift {
				return usageError{fmt.Errorf("--key is the idempotency key of a close: use it with --close")}
			}
			api, err := newLocalAPI(configPath)
			if err != nil {
				return err
			}
			var rep device.Report
			if closeShift {
				var body any
				if key != "" {
					body = device.CloseRequest{IdempotencyKey: key}
				}
				err = api.do(cmd.Context(), "POST", "/v1/reports/close", body, &rep)
			} else {
				path := "/v1/reports/current"
				if printIt {
					path += "?print=true"
				}
				err = api.do(cmd.Context(), "GET", path, nil, &rep)
			}
			var ae *apiCallError
			if errors.As(err, &ae) && !errors.As(err, new(hintError)) {
				return withHint(fmt.Errorf("shift report: %s", ae.Message), "posagent report --help")
			} else if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(m.Stdout)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(rep)
			}
			return writeReport(m.Stdout, &rep, closeShift || printIt)
		},
	}
	cmd.Flags().BoolVar(&closeShift, "close", false, "close the shift: make, store and print the Z report")
	cmd.Flags().StringVar(&key, "key", "", "with --close: an idempotency key, so a retried close returns the same Z report")
	cmd.Flags().BoolVar(&printIt, "print", false, "print the X report on the receipt printer (a Z report is always printed)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as the agent's JSON")
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config (env POSAGENT_CONFIG)")
	return cmd
}

// writeReport prints the report for a person: the period, each currency's figures, the
// acquirer's side, the differences with what to do, and whether it was printed.
func writeReport(w io.Writer, rep *device.Report, printAsked bool) error {
	ts := func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }
	title := "X report (shift not closed), shift no. " + fmt.Sprint(rep.Number)
	if rep.Kind == "Z" {
		title = fmt.Sprintf("Z report no. %d", rep.Number)
	}
	fmt.Fprintf(w, "%s, terminal %s\n", title, rep.Terminal)
	fmt.Fprintf(w, "Period: %s to %s", ts(rep.From), ts(rep.To))
	if rep.ClosedAt != nil {
		fmt.Fprintf(w, " (closed %s)", ts(*rep.ClosedAt))
	}
	if rep.Replayed {
		fmt.Fprint(w, ", already closed with this key")
	}
	fmt.Fprintln(w)
	if len(rep.Totals.Currencies) == 0 {
		fmt.Fprintln(w, "No sales in this shift.")
	}
	for _, c := range rep.Totals.Currencies {
		cur, err := posagent.LookupCurrency(c.Currency)
		if err != nil {
			cur = posagent.Currency{Code: c.Currency}
		}
		f := func(v int64) string { return offline.FormatAmount(v, cur) }
		fmt.Fprintf(w, "\n%s\n", c.Currency)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		row := func(label string, n offline.Count) { fmt.Fprintf(tw, "  %s\t%d\t%s\t\n", label, n.Count, f(n.Amount)) }
		row("Sales approved", c.Approved)
		row("  online", c.Online)
		row("  offline", c.Offline.Approved)
		row("Pending offline", c.PendingOffline)
		row("Declined", c.Sales[posagent.StateDeclined])
		row("  after upload", c.DeclinedAfterUpload)
		row("Refunds approved", c.RefundsApproved)
		row("Refunds pending", c.RefundsPending)
		fmt.Fprintf(tw, "  Net\t\t%s\t\n", f(c.Net))
		tw.Flush()
		fmt.Fprintf(w, "  By method: %s\n", splits(c.ByMethod, f))
		fmt.Fprintf(w, "  By scheme: %s\n", splits(c.ByScheme, f))
	}
	fmt.Fprintln(w)
	switch {
	case !rep.Acquirer.Compared:
		fmt.Fprintf(w, "Acquirer: not compared (%s)\n", rep.Acquirer.Reason)
	case len(rep.Differences) == 0:
		fmt.Fprintln(w, "Acquirer: the totals agree.")
	default:
		fmt.Fprintln(w, "Acquirer: compared.")
	}
	if len(rep.Differences) > 0 {
		fmt.Fprintf(w, "Differences (%d):\n", len(rep.Differences))
	}
	for _, d := range rep.Differences {
		fmt.Fprintf(w, "  - %s\n    what to do: %s\n", d.Message, d.Action)
	}
	switch {
	case rep.Print != nil && rep.Print.Printed:
		fmt.Fprintln(w, "Printed.")
	case rep.Print != nil:
		fmt.Fprintf(w, "Not printed: %s\n", rep.Print.Error)
	case printAsked && rep.Replayed:
		fmt.Fprintln(w, "Not printed again (it was printed when the shift was closed).")
	}
	return nil
}

// splits formats "emv-cpm 1 3.30 (+2 pending 15.00); wallet-code …", sorted by name.
func splits[K ~string](m map[K]offline.Split, f func(int64) string) string {
	if len(m) == 0 {
		return "none"
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, string(k))
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		s := m[K(n)]
		parts[i] = fmt.Sprintf("%s %d %s", n, s.Approved.Count, f(s.Approved.Amount))
		if s.PendingOffline.Count > 0 {
			parts[i] += fmt.Sprintf(" (+%d pending %s)", s.PendingOffline.Count, f(s.PendingOffline.Amount))
		}
	}
	return strings.Join(parts, "; ")
}
