package device

import (
	"testing"
	"time"

	"github.com/posagent/posagent/sync/acquirer"
)

// TestAgent_MoneyMovesExactlyOnce runs a wallet payment through each way an online
// authorization's outcome can be lost, late or pending, through the real stack (possim's
// scanner, the agent, the acquirer over HTTP on its SQLite file), and checks that the
// counter's final state and the acquirer's ledger agree: approved at the counter ⇔
// captured at the acquirer; anything else ⇒ nothing captured, and no reversal left unsent.
func TestAgent_MoneyMovesExactlyOnce(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Checkout.CheckWindow = Dur(4 * time.Second)
		c.Checkout.PendingWindow = Dur(3 * time.Second)
	})
	tests := []struct {
		name      string
		sim       int64
		wantState PaymentState
		wantCode  string
		via       PaymentState // an open state the payment must pass through ("" : none required)
	}{
		{"approved, answer lost", acquirer.SimLostAnswer, PaymentApproved, "", PaymentChecking},
		{"approved after the client's timeout", acquirer.SimLateApproval, PaymentApproved, "", PaymentChecking},
		{"hangs, never decided", acquirer.SimTimeout, PaymentFailed, "reversed", PaymentChecking},
		{"approved, then 502", acquirer.SimBadGateway, PaymentApproved, "", PaymentChecking},
		{"customer confirms", acquirer.SimPendingApprove, PaymentApproved, "", PaymentPendingCustomer},
		{"customer cancels in the wallet", acquirer.SimPendingDecline, PaymentDeclined, "declined", PaymentPendingCustomer},
		{"customer never confirms", acquirer.SimPendingForever, PaymentFailed, "reversed", PaymentPendingCustomer},
		{"plain approval", 0, PaymentApproved, "", ""},
		{"plain decline", acquirer.SimDeclineFunds, PaymentDeclined, "declined", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.waitPhase(PhaseIdle)
			ev := e.subscribe("")
			key := "k-money-" + tt.name
			p := e.create(int64(1000+100*i)+tt.sim, key, ModeScan)
			e.scan(wechatCode)
			if tt.via != "" {
				ev.next(t, "payment", func(m map[string]any) bool { return m["id"] == p.ID && m["state"] == string(tt.via) })
			}
			got := e.wait(p.ID, done)
			code := ""
			if got.Error != nil {
				code = got.Error.Code
			}
			if got.State != tt.wantState || code != tt.wantCode {
				t.Fatalf("got %s %q (%+v), want %s %q", got.State, code, got.Error, tt.wantState, tt.wantCode)
			}
			e.waitReversals()
			e.agree(got)
			if l, ok := e.ledger(key); tt.wantState == PaymentApproved && (!ok || l.State != "approved") {
				t.Errorf("ledger %+v (found %v), want approved", l, ok)
			}
		})
	}
}
