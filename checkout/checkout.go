// Package checkout is the counter's payment logic as a pure state machine: no I/O, no
// clock, no goroutines. Step takes a payment's state and one event (a scan, the
// acquirer's answer, a timer, a cancel, a restart) and returns the new state and the
// effects the caller must perform (journal this, ask the acquirer, query, reverse, show,
// finish). The caller (package device) performs them and feeds their results back as
// events. Same state and same event give the same result, so every path — including
// every way an authorization's outcome can stay unknown — is a table test.
//
// The rules it implements (the wallets' payment-code rules: WeChat Pay micropay, Alipay,
// UnionPay: query, then reverse):
//
//   - Money moves exactly once. An authorization whose answer did not come (a timeout, a
//     connection lost after the request left, a 5xx) is unknown, never failed: the payment
//     shows checking and the acquirer is queried by sale id with backoff until
//     Rules.CheckWindow has passed; still unknown then, the authorization is reversed
//     (journaled, sent until acknowledged) and the payment fails with code "reversed": no
//     money was taken. A request that certainly never reached the acquirer is a known
//     "no", and a 4xx answer is a refusal.
//   - Offline-capable codes (an EMV consumer-presented code under the offline policy) keep
//     the store-and-forward rule: when the authorization's outcome is unknown, the sale is
//     stored offline under the policy, and the acquirer, receiving the record, reuses any
//     decision it already made for the same idempotency key instead of deciding twice. When
//     the policy refuses, the outcome is resolved like an online-only code's.
//   - The customer confirming in the wallet (pending_customer) is polled until approved or
//     declined, and reversed when Rules.PendingWindow passes first.
//   - A payment being authorized cannot be canceled (money may be moving); one that is
//     checking or waiting for the customer's confirmation is canceled by reversing it.
//   - After a restart, a sale found authorizing is resolved by querying (never by
//     authorizing again), within the deadline it had.
//   - A merchant-presented order canceled at the counter or not paid in time is closed at
//     the acquirer (the Commit's Reverse: for an order, its reversal is its close), so a
//     customer who pays after it is refunded by the acquirer, never charged for goods
//     they did not get.
package checkout

import (
	"time"

	"github.com/posagent/posagent"
)

// State is a payment's state at the local API.
type State string

// The payment states. waiting, authorizing, pending_customer and checking are open; the
// others are over at the counter (stored and uploading are settled later by the
// acquirer's result).
const (
	Waiting         State = "waiting"          // for the customer's code, or to pay the shown code
	Authorizing     State = "authorizing"      // journaled and sent for online authorization
	PendingCustomer State = "pending_customer" // the wallet asks the customer to confirm
	Checking        State = "checking"         // the outcome is unknown: asking the acquirer
	Approved        State = "approved"
	Stored          State = "stored"    // accepted offline: hand over the goods
	Uploading       State = "uploading" // accepted offline and sent; outcome pending
	Declined        State = "declined"
	Failed          State = "failed"
	Canceled        State = "canceled"
)

// Open reports whether the payment is still being decided at the counter.
func (s State) Open() bool {
	return s == Waiting || s == Authorizing || s == PendingCustomer || s == Checking
}

// Accepted reports whether the counter may hand over the goods.
func (s State) Accepted() bool { return s == Approved || s == Stored || s == Uploading }

// Mode is how the customer pays.
type Mode string

// The modes.
const (
	ModeScan Mode = "scan" // the customer shows a payment code to the scanner
	ModeQR   Mode = "qr"   // the terminal shows a merchant-presented code
)

// Error is a machine code and a message a cashier can read.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes the core sets.
const (
	CodeCanceled    = "canceled"
	CodeTimeout     = "timeout"
	CodeUnreachable = "acquirer_unreachable"
	CodeAcquirer    = "acquirer_error"
	CodeDeclined    = "declined"
	CodeReversed    = "reversed"
	CodeExpired     = "expired"
	// CodeOfflineMethod: the code cannot be taken offline (the offline policy's code for
	// a method it does not allow, offline.RefuseMethod).
	CodeOfflineMethod = "offline_method"
)

// Rules are the timings of the checkout.
type Rules struct {
	// CheckWindow is how long an unknown outcome is queried before it is reversed,
	// counted from when it became unknown (WeChat Pay: reverse no earlier than ~15 s).
	CheckWindow time.Duration
	// PendingWindow is how long the customer has to confirm in the wallet.
	PendingWindow time.Duration
	// QueryFirst is the wait before the first status query; each next one waits twice
	// as long, up to QueryMax.
	QueryFirst, QueryMax time.Duration
	// OrderPoll is the interval between status polls of a merchant-presented order.
	OrderPoll time.Duration
}

// DefaultRules are the timings a terminal starts with.
var DefaultRules = Rules{CheckWindow: 30 * time.Second, PendingWindow: 60 * time.Second,
	QueryFirst: 500 * time.Millisecond, QueryMax: 5 * time.Second, OrderPoll: 2 * time.Second}

// queryDelay is the wait before query n (0-based): QueryFirst doubling up to QueryMax.
// Deterministic (no jitter): one terminal queries one sale, there is no herd to spread.
func (r Rules) queryDelay(n int) time.Duration {
	d := r.QueryFirst
	for i := 0; i < n && d < r.QueryMax; i++ {
		d *= 2
	}
	return min(d, r.QueryMax)
}

// Payment is what the core knows of one payment.
type Payment struct {
	Mode  Mode
	State State
	// OnlineOnly: the scanned code needs the acquirer (wallet payment codes); false for
	// codes the offline policy may accept.
	OnlineOnly bool
	// Journaled: the sale has a journal record.
	Journaled bool
	// MaybeSent: an authorization request may have reached the acquirer.
	MaybeSent bool
	// ExpiresAt ends waiting: the scan or QR timeout.
	ExpiresAt time.Time
	// ResolveBy is the deadline of checking and pending_customer: then it is reversed.
	ResolveBy time.Time
	// NextPoll is when the next status query (or order poll) is due.
	NextPoll time.Time
	// Polls counts the status queries of this resolution.
	Polls int
	// Reversed: a reversal was journaled for the sale.
	Reversed bool
	Error    *Error
}

// Event is something that happened to a payment.
type Event interface{ isEvent() }

// Scanned is a code read while the payment waits.
type Scanned struct {
	Usable     bool   // a customer payment code (wallet code or EMV CPM)
	Reason     string // why not, when not usable
	Name       string // the wallet's or scheme's name, for messages
	OnlineOnly bool
	// AcquirerOnline: the last ping succeeded (the offline path is taken at once when not).
	AcquirerOnline bool
}

// Cancel is the POS app's cancel.
type Cancel struct{}

// Tick is a timer going off (or any moment the caller wants the core to look at the
// time).
type Tick struct{}

// Resumed is a restart that found the payment's sale authorizing in the journal.
type Resumed struct{}

// Journaled is the result of AppendSale: the record exists (Offline: as stored).
type Journaled struct{ Offline bool }

// JournalFailed is AppendSale's or StoreOffline's failure: the policy refused, the disk is
// full… Err says what the cashier reads.
type JournalFailed struct{ Err Error }

// Answered is the acquirer's answer to Authorize or Query: a wire decision (approved,
// declined, pending_customer, reversed) or, for a query, not_found.
type Answered struct {
	Decision string
	Reason   string
}

// The decisions Answered carries.
const (
	DecisionApproved = "approved"
	DecisionDeclined = "declined"
	DecisionPending  = "pending_customer"
	DecisionReversed = "reversed"
	DecisionNotFound = "not_found"
)

// AuthFailed is an Authorize that got no answer, or a refusal.
type AuthFailed struct {
	// MaybeSent: the request may have reached the acquirer (a timeout, a reset after
	// writing, a 5xx). False only when it certainly did not (connection refused…).
	MaybeSent bool
	// Refused: the acquirer answered 4xx: it did not authorize and will not.
	Refused bool
	Message string
}

// QueryFailed is a status query or order poll that got no answer.
type QueryFailed struct{ Message string }

// StoredOffline is StoreOffline's success.
type StoredOffline struct{}

// OrderAnswered is a merchant-presented order's state: pending, paid, expired, canceled.
type OrderAnswered struct{ State string }

func (Scanned) isEvent()       {}
func (Cancel) isEvent()        {}
func (Tick) isEvent()          {}
func (Resumed) isEvent()       {}
func (Journaled) isEvent()     {}
func (JournalFailed) isEvent() {}
func (Answered) isEvent()      {}
func (AuthFailed) isEvent()    {}
func (QueryFailed) isEvent()   {}
func (StoredOffline) isEvent() {}
func (OrderAnswered) isEvent() {}

// Effect is something the caller must do.
type Effect interface{ isEffect() }

// AppendSale journals the sale (Offline: as accepted offline, under the policy); the
// result is Journaled or JournalFailed.
type AppendSale struct{ Offline bool }

// Authorize sends the journaled sale for online authorization, bounded by the auth
// timeout; the result is Answered or AuthFailed.
type Authorize struct{}

// Query asks the acquirer for the authorization's status by sale id; the result is
// Answered or QueryFailed.
type Query struct{}

// StoreOffline moves the authorizing sale to stored under the offline policy; the result
// is StoredOffline or JournalFailed.
type StoreOffline struct{}

// PollOrder asks for a merchant-presented order's state; the result is OrderAnswered or
// QueryFailed.
type PollOrder struct{}

// Commit writes the payment, and with it (one transaction) the sale's new state when Sale
// is set and a reversal to send when Reverse is set. It has no result event: a journal
// that cannot be written leaves the sale authorizing, which the reconciler resolves.
type Commit struct {
	Sale    posagent.State
	Note    string
	Reverse string // the reversal's reason
}

// Show puts a screen on the customer display.
type Show struct{ Screen Screen }

// Screen is what the customer display shows.
type Screen string

// The screens the core asks for (the final one is Finish's).
const (
	ScreenScan        Screen = "scan"        // show your payment code, and the amount
	ScreenPayQR       Screen = "pay_qr"      // scan the shown code to pay
	ScreenAuthorizing Screen = "authorizing" // please wait
	ScreenChecking    Screen = "checking"    // checking the payment, please wait
	ScreenConfirm     Screen = "confirm"     // confirm on your phone
	ScreenRefusedCode Screen = "refused"     // code not accepted
)

// RefuseScan reports a scanned code that is not a payment code; the payment goes on
// waiting.
type RefuseScan struct{ Reason string }

// Schedule asks for a Tick at At (replacing any earlier request).
type Schedule struct{ At time.Time }

// Finish ends the payment at the counter: the final screen, the event, the receipts.
type Finish struct{}

func (AppendSale) isEffect()   {}
func (Authorize) isEffect()    {}
func (Query) isEffect()        {}
func (StoreOffline) isEffect() {}
func (PollOrder) isEffect()    {}
func (Commit) isEffect()       {}
func (Show) isEffect()         {}
func (RefuseScan) isEffect()   {}
func (Schedule) isEffect()     {}
func (Finish) isEffect()       {}

// Messages the cashier reads.
const (
	msgReversed        = "no answer from the acquirer in time: the payment was reversed and no money was taken; ask the customer to pay again"
	msgPendingTimeout  = "the customer did not confirm in the wallet in time: the payment was reversed and no money was taken"
	msgCanceledPending = "canceled by the POS app; the payment was reversed at the acquirer and no money was taken"
)

// Step applies one event at time now and returns the payment's new state and what to do.
// It never fails: an event that does not apply in the payment's state changes nothing
// (an answer arriving for a payment already over, a scan while authorizing).
func Step(p Payment, ev Event, now time.Time, r Rules) (Payment, []Effect) {
	if !p.State.Open() {
		return p, nil
	}
	switch p.State {
	case Waiting:
		if p.Mode == ModeQR {
			return stepQR(p, ev, now, r)
		}
		return stepWaiting(p, ev, now)
	case Authorizing:
		return stepAuthorizing(p, ev, now, r)
	case Checking, PendingCustomer:
		return stepResolving(p, ev, now, r)
	}
	return p, nil
}

func finish(p Payment, s State, e *Error, c Commit) (Payment, []Effect) {
	p.State, p.Error = s, e
	p.NextPoll = time.Time{}
	return p, []Effect{c, Finish{}}
}

func stepWaiting(p Payment, ev Event, now time.Time) (Payment, []Effect) {
	switch ev := ev.(type) {
	case Cancel:
		return finish(p, Canceled, &Error{CodeCanceled, "canceled by the POS app"}, Commit{})
	case Tick:
		if !now.Before(p.ExpiresAt) {
			return finish(p, Failed, &Error{CodeTimeout, "no payment code was scanned in time"}, Commit{})
		}
		return p, []Effect{Schedule{p.ExpiresAt}}
	case Scanned:
		if p.Journaled {
			return p, nil // the code is being journaled
		}
		if !ev.Usable {
			return p, []Effect{RefuseScan{ev.Reason}}
		}
		p.OnlineOnly = ev.OnlineOnly
		if !ev.AcquirerOnline && ev.OnlineOnly {
			return finish(p, Failed, &Error{CodeOfflineMethod, ev.Name + " codes need the acquirer, which is unreachable: ask for another way to pay"}, Commit{})
		}
		p.Journaled = true // requested; Journaled or JournalFailed follows
		return p, []Effect{AppendSale{Offline: !ev.AcquirerOnline}}
	case Journaled:
		if ev.Offline {
			return finish(p, Stored, nil, Commit{})
		}
		p.State = Authorizing
		p.MaybeSent = true // from the moment Authorize runs; a restart must query
		return p, []Effect{Commit{}, Show{ScreenAuthorizing}, Authorize{}}
	case JournalFailed:
		p.Journaled = false
		e := ev.Err
		return finish(p, Failed, &e, Commit{})
	}
	return p, nil
}

func stepAuthorizing(p Payment, ev Event, now time.Time, r Rules) (Payment, []Effect) {
	switch ev := ev.(type) {
	case Answered:
		return decided(p, ev, now, r)
	case AuthFailed:
		switch {
		case ev.Refused:
			p.MaybeSent = false
			msg := "the acquirer refused the request: " + ev.Message
			return finish(p, Failed, &Error{CodeAcquirer, msg}, Commit{Sale: posagent.StateFailed, Note: msg})
		case !p.OnlineOnly:
			p.MaybeSent = ev.MaybeSent
			return p, []Effect{StoreOffline{}}
		case !ev.MaybeSent:
			p.MaybeSent = false
			msg := "the acquirer could not be reached and these codes need it: ask for another way to pay"
			return finish(p, Failed, &Error{CodeUnreachable, msg}, Commit{Sale: posagent.StateFailed, Note: msg + " (" + ev.Message + ")"})
		}
		return check(p, now, r, "no answer to the authorization: "+ev.Message)
	case StoredOffline:
		return finish(p, Stored, nil, Commit{})
	case JournalFailed: // StoreOffline refused
		if p.MaybeSent {
			return check(p, now, r, "not stored offline ("+ev.Err.Message+"): resolving the authorization")
		}
		e := ev.Err
		return finish(p, Failed, &e, Commit{Sale: posagent.StateFailed, Note: e.Message})
	case Resumed:
		return check(p, now, r, "resumed after a restart")
	}
	return p, nil
}

// check enters checking: the outcome is unknown; query until ResolveBy.
func check(p Payment, now time.Time, r Rules, note string) (Payment, []Effect) {
	p.State = Checking
	if p.ResolveBy.IsZero() {
		p.ResolveBy = now.Add(r.CheckWindow)
	}
	p.Polls = 0
	p.NextPoll = now.Add(r.queryDelay(0))
	return p, []Effect{Commit{Note: note}, Show{ScreenChecking}, Schedule{p.NextPoll}}
}

// decided applies an answer from the acquirer (to Authorize or Query).
func decided(p Payment, a Answered, now time.Time, r Rules) (Payment, []Effect) {
	switch a.Decision {
	case DecisionApproved:
		return finish(p, Approved, nil, Commit{Sale: posagent.StateApproved, Note: "approved online"})
	case DecisionDeclined:
		reason := a.Reason
		if reason == "" {
			reason = "declined by the acquirer"
		}
		return finish(p, Declined, &Error{CodeDeclined, reason}, Commit{Sale: posagent.StateDeclined, Note: reason})
	case DecisionReversed:
		msg := "the acquirer reports the payment reversed: no money was taken"
		return finish(p, Failed, &Error{CodeReversed, msg}, Commit{Sale: posagent.StateFailed, Note: msg})
	case DecisionPending:
		effects := []Effect{}
		if p.State != PendingCustomer {
			p.State = PendingCustomer
			p.ResolveBy = later(p.ResolveBy, now.Add(r.PendingWindow))
			effects = append(effects, Commit{Note: "waiting for the customer to confirm"}, Show{ScreenConfirm})
		}
		return poll(p, now, r, effects)
	}
	// not_found (or anything unknown): the authorization has not arrived, or is in flight.
	if p.State == Authorizing {
		return check(p, now, r, "the acquirer has no answer yet")
	}
	return poll(p, now, r, nil)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// poll schedules the next status query, or reverses when the deadline has come.
func poll(p Payment, now time.Time, r Rules, effects []Effect) (Payment, []Effect) {
	if !now.Before(p.ResolveBy) {
		return reverse(p, effects)
	}
	p.NextPoll = now.Add(r.queryDelay(p.Polls))
	if p.NextPoll.After(p.ResolveBy) {
		p.NextPoll = p.ResolveBy
	}
	return p, append(effects, Schedule{p.NextPoll})
}

// reverse gives up on the outcome: the reversal is journaled with the failure, and the
// caller sends it until the acquirer acknowledges it.
func reverse(p Payment, effects []Effect) (Payment, []Effect) {
	msg, why := msgReversed, "no outcome within the check window"
	if p.State == PendingCustomer {
		msg, why = msgPendingTimeout, "the customer did not confirm in time"
	}
	p.Reversed = true
	q, fin := finish(p, Failed, &Error{CodeReversed, msg}, Commit{Sale: posagent.StateFailed, Note: "reversed: " + why, Reverse: why})
	return q, append(effects, fin...)
}

func stepResolving(p Payment, ev Event, now time.Time, r Rules) (Payment, []Effect) {
	switch ev := ev.(type) {
	case Tick, Resumed:
		if !now.Before(p.ResolveBy) {
			return reverse(p, nil)
		}
		if now.Before(p.NextPoll) {
			return p, []Effect{Schedule{p.NextPoll}}
		}
		p.Polls++
		return p, []Effect{Query{}}
	case Answered:
		return decided(p, ev, now, r)
	case QueryFailed:
		return poll(p, now, r, nil)
	case Cancel:
		p.Reversed = true
		return finish(p, Canceled, &Error{CodeCanceled, msgCanceledPending},
			Commit{Sale: posagent.StateCanceled, Note: "canceled by the POS app while " + string(p.State), Reverse: "canceled by the POS app"})
	}
	return p, nil
}

func stepQR(p Payment, ev Event, now time.Time, r Rules) (Payment, []Effect) {
	switch ev := ev.(type) {
	case Cancel:
		p.Reversed = true
		return finish(p, Canceled, &Error{CodeCanceled, "canceled by the POS app"},
			Commit{Sale: posagent.StateCanceled, Note: "canceled by the POS app", Reverse: "order canceled by the POS app"})
	case Tick, Resumed:
		if !now.Before(p.ExpiresAt) {
			p.Reversed = true
			return finish(p, Failed, &Error{CodeTimeout, "the customer did not pay in time"},
				Commit{Sale: posagent.StateFailed, Note: "not paid in time", Reverse: "order not paid in time"})
		}
		if now.Before(p.NextPoll) {
			return p, []Effect{Schedule{minTime(p.NextPoll, p.ExpiresAt)}}
		}
		return p, []Effect{PollOrder{}}
	case QueryFailed:
		p.NextPoll = now.Add(r.OrderPoll)
		return p, []Effect{Schedule{minTime(p.NextPoll, p.ExpiresAt)}}
	case OrderAnswered:
		switch ev.State {
		case "paid":
			return finish(p, Approved, nil, Commit{Sale: posagent.StateApproved, Note: "order paid"})
		case "expired":
			return finish(p, Failed, &Error{CodeExpired, "the order expired at the acquirer"}, Commit{Sale: posagent.StateFailed, Note: "order expired"})
		case "canceled":
			return finish(p, Canceled, &Error{CodeCanceled, "the order was canceled at the acquirer"}, Commit{Sale: posagent.StateCanceled, Note: "order canceled at the acquirer"})
		}
		p.NextPoll = now.Add(r.OrderPoll)
		return p, []Effect{Schedule{minTime(p.NextPoll, p.ExpiresAt)}}
	}
	return p, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
