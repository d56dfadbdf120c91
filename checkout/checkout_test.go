package checkout

import (
	"reflect"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

var (
	t0    = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	rules = Rules{CheckWindow: 30 * time.Second, PendingWindow: 60 * time.Second, QueryFirst: time.Second, QueryMax: 8 * time.Second, OrderPoll: 2 * time.Second}
)

func at(d time.Duration) time.Time { return t0.Add(d) }

// Payments in each state the table starts from.
var (
	waiting     = Payment{Mode: ModeScan, State: Waiting, ExpiresAt: at(time.Minute)}
	wallet      = Payment{Mode: ModeScan, State: Authorizing, OnlineOnly: true, Journaled: true, MaybeSent: true, ExpiresAt: at(time.Minute)}
	cpm         = Payment{Mode: ModeScan, State: Authorizing, Journaled: true, MaybeSent: true, ExpiresAt: at(time.Minute)}
	checking    = Payment{Mode: ModeScan, State: Checking, OnlineOnly: true, Journaled: true, MaybeSent: true, ExpiresAt: at(time.Minute), ResolveBy: at(30 * time.Second), NextPoll: at(time.Second)}
	pending     = Payment{Mode: ModeScan, State: PendingCustomer, OnlineOnly: true, Journaled: true, MaybeSent: true, ExpiresAt: at(time.Minute), ResolveBy: at(60 * time.Second), NextPoll: at(time.Second)}
	qrWaiting   = Payment{Mode: ModeQR, State: Waiting, OnlineOnly: true, Journaled: true, ExpiresAt: at(2 * time.Minute), NextPoll: at(2 * time.Second)}
	approvedPay = Payment{Mode: ModeScan, State: Approved, Journaled: true}
)

func with(p Payment, f func(*Payment)) Payment { f(&p); return p }

func TestStep(t *testing.T) {
	reversedCommit := func(why string) Commit {
		return Commit{Sale: posagent.StateFailed, Note: "reversed: " + why, Reverse: why}
	}
	tests := []struct {
		name        string
		from        Payment
		ev          Event
		now         time.Time
		wantState   State
		wantCode    string // the error code, "" for none
		wantEffects []Effect
	}{
		// waiting for the customer's code
		{"cancel while waiting", waiting, Cancel{}, at(0), Canceled, CodeCanceled, []Effect{Commit{}, Finish{}}},
		{"scan timeout", waiting, Tick{}, at(time.Minute), Failed, CodeTimeout, []Effect{Commit{}, Finish{}}},
		{"early tick waits on", waiting, Tick{}, at(time.Second), Waiting, "", []Effect{Schedule{at(time.Minute)}}},
		{"unusable code refused, still waiting", waiting, Scanned{Reason: "a merchant's code"}, at(0), Waiting, "", []Effect{RefuseScan{"a merchant's code"}}},
		{"wallet code online: journal first", waiting, Scanned{Usable: true, OnlineOnly: true, AcquirerOnline: true}, at(0), Waiting, "", []Effect{AppendSale{Offline: false}}},
		{"wallet code offline: refused, nothing journaled", waiting, Scanned{Usable: true, OnlineOnly: true, Name: "WeChat Pay"}, at(0), Failed, CodeOfflineMethod, []Effect{Commit{}, Finish{}}},
		{"cpm offline: stored under the policy", waiting, Scanned{Usable: true}, at(0), Waiting, "", []Effect{AppendSale{Offline: true}}},
		{"journaled online: authorize", with(waiting, func(p *Payment) { p.Journaled = true }), Journaled{}, at(0), Authorizing, "", []Effect{Commit{}, Show{ScreenAuthorizing}, Authorize{}}},
		{"journaled offline: stored", with(waiting, func(p *Payment) { p.Journaled = true }), Journaled{Offline: true}, at(0), Stored, "", []Effect{Commit{}, Finish{}}},
		{"journal refused", with(waiting, func(p *Payment) { p.Journaled = true }), JournalFailed{Error{"journal_full", "full"}}, at(0), Failed, "journal_full", []Effect{Commit{}, Finish{}}},
		{"second scan while journaling ignored", with(waiting, func(p *Payment) { p.Journaled = true }), Scanned{Usable: true}, at(0), Waiting, "", nil},

		// authorizing: the answer
		{"approved", wallet, Answered{Decision: DecisionApproved}, at(time.Second), Approved, "", []Effect{Commit{Sale: posagent.StateApproved, Note: "approved online"}, Finish{}}},
		{"declined", wallet, Answered{Decision: DecisionDeclined, Reason: "insufficient funds"}, at(time.Second), Declined, CodeDeclined, []Effect{Commit{Sale: posagent.StateDeclined, Note: "insufficient funds"}, Finish{}}},
		{"reversed by a tombstone", wallet, Answered{Decision: DecisionReversed}, at(time.Second), Failed, CodeReversed, []Effect{Commit{Sale: posagent.StateFailed, Note: "the acquirer reports the payment reversed: no money was taken"}, Finish{}}},
		{"pending customer: poll", wallet, Answered{Decision: DecisionPending}, at(time.Second), PendingCustomer, "", []Effect{Commit{Note: "waiting for the customer to confirm"}, Show{ScreenConfirm}, Schedule{at(2 * time.Second)}}},
		{"answer without a decision: check", wallet, Answered{Decision: DecisionNotFound}, at(time.Second), Checking, "", []Effect{Commit{Note: "the acquirer has no answer yet"}, Show{ScreenChecking}, Schedule{at(2 * time.Second)}}},

		// authorizing: no answer
		{"wallet, timeout: unknown, check", wallet, AuthFailed{MaybeSent: true, Message: "timeout"}, at(5 * time.Second), Checking, "", []Effect{Commit{Note: "no answer to the authorization: timeout"}, Show{ScreenChecking}, Schedule{at(6 * time.Second)}}},
		{"wallet, never sent: failed", wallet, AuthFailed{Message: "refused"}, at(time.Second), Failed, CodeUnreachable, []Effect{Commit{Sale: posagent.StateFailed, Note: "the acquirer could not be reached and these codes need it: ask for another way to pay (refused)"}, Finish{}}},
		{"wallet, 4xx: failed", wallet, AuthFailed{Refused: true, Message: "422 invalid"}, at(time.Second), Failed, CodeAcquirer, []Effect{Commit{Sale: posagent.StateFailed, Note: "the acquirer refused the request: 422 invalid"}, Finish{}}},
		{"cpm, timeout: store offline", cpm, AuthFailed{MaybeSent: true}, at(time.Second), Authorizing, "", []Effect{StoreOffline{}}},
		{"cpm, never sent: store offline", cpm, AuthFailed{}, at(time.Second), Authorizing, "", []Effect{StoreOffline{}}},
		{"cpm stored", cpm, StoredOffline{}, at(time.Second), Stored, "", []Effect{Commit{}, Finish{}}},
		{"cpm maybe sent, policy refuses: check", with(cpm, func(p *Payment) { p.MaybeSent = true }), JournalFailed{Error{"limit", "over the limit"}}, at(time.Second), Checking, "", []Effect{Commit{Note: "not stored offline (over the limit): resolving the authorization"}, Show{ScreenChecking}, Schedule{at(2 * time.Second)}}},
		{"cpm never sent, policy refuses: failed", with(cpm, func(p *Payment) { p.MaybeSent = false }), JournalFailed{Error{"limit", "over the limit"}}, at(time.Second), Failed, "limit", []Effect{Commit{Sale: posagent.StateFailed, Note: "over the limit"}, Finish{}}},
		{"cancel while authorizing ignored", wallet, Cancel{}, at(time.Second), Authorizing, "", nil},
		{"scan while authorizing ignored", wallet, Scanned{Usable: true}, at(time.Second), Authorizing, "", nil},
		{"restart finds it authorizing: check", wallet, Resumed{}, at(time.Second), Checking, "", []Effect{Commit{Note: "resumed after a restart"}, Show{ScreenChecking}, Schedule{at(2 * time.Second)}}},

		// checking: query, then reverse
		{"tick before the poll waits", checking, Tick{}, at(500 * time.Millisecond), Checking, "", []Effect{Schedule{at(time.Second)}}},
		{"tick at the poll queries", checking, Tick{}, at(time.Second), Checking, "", []Effect{Query{}}},
		{"query: approved", checking, Answered{Decision: DecisionApproved}, at(2 * time.Second), Approved, "", []Effect{Commit{Sale: posagent.StateApproved, Note: "approved online"}, Finish{}}},
		{"query: declined", checking, Answered{Decision: DecisionDeclined, Reason: "expired code"}, at(2 * time.Second), Declined, CodeDeclined, []Effect{Commit{Sale: posagent.StateDeclined, Note: "expired code"}, Finish{}}},
		{"query: not found, poll again with backoff", with(checking, func(p *Payment) { p.Polls = 2 }), Answered{Decision: DecisionNotFound}, at(10 * time.Second), Checking, "", []Effect{Schedule{at(14 * time.Second)}}},
		{"query failed, poll again", with(checking, func(p *Payment) { p.Polls = 1 }), QueryFailed{"timeout"}, at(10 * time.Second), Checking, "", []Effect{Schedule{at(12 * time.Second)}}},
		{"next poll never past the deadline", with(checking, func(p *Payment) { p.Polls = 9 }), QueryFailed{"timeout"}, at(25 * time.Second), Checking, "", []Effect{Schedule{at(30 * time.Second)}}},
		{"not found at the deadline: reverse", checking, Answered{Decision: DecisionNotFound}, at(30 * time.Second), Failed, CodeReversed, []Effect{reversedCommit("no outcome within the check window"), Finish{}}},
		{"query failed at the deadline: reverse", checking, QueryFailed{"refused"}, at(31 * time.Second), Failed, CodeReversed, []Effect{reversedCommit("no outcome within the check window"), Finish{}}},
		{"tick at the deadline: reverse", checking, Tick{}, at(30 * time.Second), Failed, CodeReversed, []Effect{reversedCommit("no outcome within the check window"), Finish{}}},
		{"query: pending, the customer confirms", checking, Answered{Decision: DecisionPending}, at(2 * time.Second), PendingCustomer, "", []Effect{Commit{Note: "waiting for the customer to confirm"}, Show{ScreenConfirm}, Schedule{at(3 * time.Second)}}},
		{"cancel while checking: reverse", checking, Cancel{}, at(2 * time.Second), Canceled, CodeCanceled, []Effect{Commit{Sale: posagent.StateCanceled, Note: "canceled by the POS app while checking", Reverse: "canceled by the POS app"}, Finish{}}},
		{"restart while checking: deadline kept", checking, Resumed{}, at(40 * time.Second), Failed, CodeReversed, []Effect{reversedCommit("no outcome within the check window"), Finish{}}},
		{"restart while checking, in time: query", checking, Resumed{}, at(5 * time.Second), Checking, "", []Effect{Query{}}},

		// pending_customer
		{"pending: still pending, poll", pending, Answered{Decision: DecisionPending}, at(5 * time.Second), PendingCustomer, "", []Effect{Schedule{at(6 * time.Second)}}},
		{"pending: approved", pending, Answered{Decision: DecisionApproved}, at(5 * time.Second), Approved, "", []Effect{Commit{Sale: posagent.StateApproved, Note: "approved online"}, Finish{}}},
		{"pending: declined", pending, Answered{Decision: DecisionDeclined, Reason: "customer canceled"}, at(5 * time.Second), Declined, CodeDeclined, []Effect{Commit{Sale: posagent.StateDeclined, Note: "customer canceled"}, Finish{}}},
		{"pending past its window: reverse", pending, Answered{Decision: DecisionPending}, at(60 * time.Second), Failed, CodeReversed, []Effect{reversedCommit("the customer did not confirm in time"), Finish{}}},
		{"pending canceled by the cashier: reverse", pending, Cancel{}, at(5 * time.Second), Canceled, CodeCanceled, []Effect{Commit{Sale: posagent.StateCanceled, Note: "canceled by the POS app while pending_customer", Reverse: "canceled by the POS app"}, Finish{}}},

		// merchant-presented
		{"qr: poll due", qrWaiting, Tick{}, at(2 * time.Second), Waiting, "", []Effect{PollOrder{}}},
		{"qr: early tick", qrWaiting, Tick{}, at(time.Second), Waiting, "", []Effect{Schedule{at(2 * time.Second)}}},
		{"qr: paid", qrWaiting, OrderAnswered{"paid"}, at(3 * time.Second), Approved, "", []Effect{Commit{Sale: posagent.StateApproved, Note: "order paid"}, Finish{}}},
		{"qr: pending, poll again", qrWaiting, OrderAnswered{"pending"}, at(3 * time.Second), Waiting, "", []Effect{Schedule{at(5 * time.Second)}}},
		{"qr: expired", qrWaiting, OrderAnswered{"expired"}, at(3 * time.Second), Failed, CodeExpired, []Effect{Commit{Sale: posagent.StateFailed, Note: "order expired"}, Finish{}}},
		{"qr: canceled at the acquirer", qrWaiting, OrderAnswered{"canceled"}, at(3 * time.Second), Canceled, CodeCanceled, []Effect{Commit{Sale: posagent.StateCanceled, Note: "order canceled at the acquirer"}, Finish{}}},
		{"qr: poll failed", qrWaiting, QueryFailed{"down"}, at(3 * time.Second), Waiting, "", []Effect{Schedule{at(5 * time.Second)}}},
		{"qr: timeout, the order is closed", qrWaiting, Tick{}, at(2 * time.Minute), Failed, CodeTimeout, []Effect{Commit{Sale: posagent.StateFailed, Note: "not paid in time", Reverse: "order not paid in time"}, Finish{}}},
		{"qr: canceled, the order is closed", qrWaiting, Cancel{}, at(3 * time.Second), Canceled, CodeCanceled, []Effect{Commit{Sale: posagent.StateCanceled, Note: "canceled by the POS app", Reverse: "order canceled by the POS app"}, Finish{}}},
		{"qr: a restart polls", qrWaiting, Resumed{}, at(3 * time.Second), Waiting, "", []Effect{PollOrder{}}},

		// over: nothing changes it
		{"late answer after the outcome", approvedPay, Answered{Decision: DecisionDeclined}, at(time.Second), Approved, "", nil},
		{"cancel after the outcome", approvedPay, Cancel{}, at(time.Second), Approved, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, effects := Step(tt.from, tt.ev, tt.now, rules)
			if got.State != tt.wantState {
				t.Errorf("state: got %s, want %s", got.State, tt.wantState)
			}
			code := ""
			if got.Error != nil {
				code = got.Error.Code
			}
			if code != tt.wantCode {
				t.Errorf("error code: got %q, want %q", code, tt.wantCode)
			}
			if !reflect.DeepEqual(effects, tt.wantEffects) {
				t.Errorf("effects:\n got %#v\nwant %#v", effects, tt.wantEffects)
			}
			if got.State == Failed && got.Error.Code == CodeReversed && !got.Reversed && tt.from.State != Authorizing {
				t.Errorf("reversed without a journaled reversal")
			}
		})
	}
}

// TestStep_UnknownOutcomeAlwaysResolves drives every unknown-outcome path with an
// acquirer that never answers: each ends, within the check window, either decided by the
// acquirer or reversed — never approved or failed without one of the two.
func TestStep_UnknownOutcomeAlwaysResolves(t *testing.T) {
	for _, start := range []struct {
		name string
		p    Payment
		ev   Event
	}{
		{"timeout", wallet, AuthFailed{MaybeSent: true}},
		{"5xx after sending", wallet, AuthFailed{MaybeSent: true, Message: "502"}},
		{"pending customer", wallet, Answered{Decision: DecisionPending}},
		{"restart", wallet, Resumed{}},
	} {
		t.Run(start.name, func(t *testing.T) {
			now := at(0)
			p, effects := Step(start.p, start.ev, now, rules)
			deadline := now.Add(max(rules.CheckWindow, rules.PendingWindow))
			for steps := 0; p.State.Open(); steps++ {
				if steps > 1000 {
					t.Fatalf("no outcome after %d steps: %+v", steps, p)
				}
				var next Event = Tick{}
				for _, e := range effects {
					switch e := e.(type) {
					case Schedule:
						if !e.At.After(now) && !e.At.Equal(now) {
							t.Fatalf("scheduled into the past: %v < %v", e.At, now)
						}
						now = e.At
					case Query:
						next = Answered{Decision: DecisionNotFound}
					}
				}
				p, effects = Step(p, next, now, rules)
			}
			if now.After(deadline) {
				t.Errorf("resolved at %v, after the deadline %v", now, deadline)
			}
			if p.State != Failed || p.Error.Code != CodeReversed || !p.Reversed {
				t.Fatalf("got %s %+v, want failed/reversed with a reversal", p.State, p.Error)
			}
			var c Commit
			for _, e := range effects {
				if cc, ok := e.(Commit); ok {
					c = cc
				}
			}
			if c.Sale != posagent.StateFailed || c.Reverse == "" {
				t.Errorf("final commit %+v: want the sale failed with a journaled reversal", c)
			}
		})
	}
}

func TestRules_QueryDelay(t *testing.T) {
	r := Rules{QueryFirst: 500 * time.Millisecond, QueryMax: 3 * time.Second}
	for n, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		if got := r.queryDelay(n); got != want {
			t.Errorf("queryDelay(%d): got %v, want %v", n, got, want)
		}
	}
}
