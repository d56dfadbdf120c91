package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/device"
)

func init() { commands = append(commands, (*Main).refundCommand) }

func (m *Main) refundCommand() *cobra.Command {
	var configPath, key, reason string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "refund PAYMENT_ID AMOUNT",
		Short: "Refund all or part of an approved payment, through the running agent",
		Long: `refund asks the running agent (its local API: POST /v1/payments/{id}/refunds) to refund
AMOUNT of the payment PAYMENT_ID: a decimal in the payment's currency ("12.50"). The
refund is journaled in the sales' chain, sent to the acquirer, and when the acquirer does
not answer it is stored and forwarded with the next sync. The agent refuses a refund of a
payment that is not approved, or one that would exceed what is left to refund.

--key makes a retry a look-up (the same key returns the same refund); without it a new key
is made, so running the command twice refunds twice. The agent's address and token come
from its config (--config or POSAGENT_CONFIG) and POSAGENT_API_TOKEN.

Exit status: 0 the refund was approved or stored for forwarding, 1 it was refused or failed.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usageError{fmt.Errorf("refund takes PAYMENT_ID and AMOUNT, got %d arguments", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := newLocalAPI(configPath)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var p device.Payment
			if err := api.do(ctx, "GET", "/v1/payments/"+args[0], nil, &p); err != nil {
				return err
			}
			cur, err := posagent.LookupCurrency(p.Currency)
			if err != nil {
				return err
			}
			minor, err := posagent.ParseDecimal(args[1], cur.Minor)
			if err != nil || minor <= 0 {
				return usageError{fmt.Errorf("amount %q must be a positive decimal in %s with at most %d decimals, like 12.50", args[1], cur.Code, cur.Minor)}
			}
			if key == "" {
				id, _ := uuid.NewV7()
				key = "refund-" + id.String()
			}
			var rf device.Refund
			err = api.do(ctx, "POST", "/v1/payments/"+args[0]+"/refunds", device.RefundRequest{Amount: minor, IdempotencyKey: key, Reason: reason}, &rf)
			var ae *apiCallError
			if errors.As(err, &ae) {
				return withHint(fmt.Errorf("refund of %s: %s", args[0], ae.Message), "posagent refund --help")
			} else if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(m.Stdout)
				enc.SetIndent("", "  ")
				enc.Encode(rf)
			} else {
				fmt.Fprintf(m.Stdout, "refund %s of payment %s: %s %s %s (refund no. %d, key %s)\n", rf.ID, rf.PaymentID,
					posagent.FormatMinor(rf.Amount, cur.Minor), rf.Currency, rf.State, rf.Sequence, rf.IdempotencyKey)
			}
			if rf.State == "declined" || rf.State == "failed" {
				msg := "refused"
				if rf.Error != nil {
					msg = rf.Error.Message
				}
				return fmt.Errorf("the refund was %s: %s", rf.State, msg)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config (env POSAGENT_CONFIG)")
	cmd.Flags().StringVar(&key, "key", "", "idempotency key: the same key again returns the same refund")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the journal and the slip")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the refund as JSON")
	return cmd
}
