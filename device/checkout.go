package device

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
)

// Phase is where the counter's checkout is. One payment is open at a time (one counter,
// one customer); the phases and their moves are the table below, and every change goes
// through Agent.setPhase, which refuses a move the table does not have.
//
//	idle ──create scan──► waiting_scan ──code──► authorizing ──outcome──► finishing ──► idle
//	idle ──create qr────► waiting_customer ──paid/expired/canceled/timeout──► finishing
//	waiting_scan ──cancel/timeout──► finishing
//	idle ──restart with a sale in flight──► authorizing | waiting_customer | waiting_scan
//
// What happens to a scan in each phase: waiting_scan takes it (an unusable code is refused
// and the payment keeps waiting); every other phase ignores it with a "scan" event that
// says why ("no_sale" in idle, "busy" while a code is being authorized or a receipt
// printed, "merchant_qr" while the customer pays a shown code).
type Phase string

// The phases of the checkout.
const (
	PhaseIdle            Phase = "idle"
	PhaseWaitingScan     Phase = "waiting_scan"
	PhaseAuthorizing     Phase = "authorizing"
	PhaseWaitingCustomer Phase = "waiting_customer"
	PhaseFinishing       Phase = "finishing"
)

var phaseMoves = map[Phase][]Phase{
	PhaseIdle:            {PhaseWaitingScan, PhaseWaitingCustomer, PhaseAuthorizing},
	PhaseWaitingScan:     {PhaseAuthorizing, PhaseFinishing},
	PhaseAuthorizing:     {PhaseFinishing},
	PhaseWaitingCustomer: {PhaseFinishing},
	PhaseFinishing:       {PhaseIdle},
}

// setPhase moves the checkout; the caller holds a.mu.
func (a *Agent) setPhase(to Phase) {
	for _, ok := range phaseMoves[a.phase] {
		if ok == to {
			a.log.Debug("checkout phase", "from", a.phase, "to", to)
			a.phase = to
			return
		}
	}
	panic(fmt.Sprintf("checkout: illegal phase change %s → %s", a.phase, to))
}

// PaymentRequest is POST /v1/payments.
type PaymentRequest struct {
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Reference      string `json:"reference"`
	IdempotencyKey string `json:"idempotency_key"`
	Mode           Mode   `json:"mode"`
}

// apiError is an error the local API reports with a status and a code.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Message }

func (r *PaymentRequest) validate(defaultCurrency string) (posagent.Currency, error) {
	invalid := func(format string, args ...any) error {
		return &apiError{422, "invalid", fmt.Sprintf(format, args...)}
	}
	if r.Currency == "" {
		r.Currency = defaultCurrency
	}
	if r.Mode == "" {
		r.Mode = ModeScan
	}
	cur, err := posagent.LookupCurrency(r.Currency)
	if err != nil || cur.Code != r.Currency {
		return cur, invalid("currency %q is not an upper-case ISO 4217 alphabetic code like CNY", r.Currency)
	}
	if r.Amount <= 0 || r.Amount > 1e12 {
		return cur, invalid("amount %d must be a positive number of minor units (at most 10^12)", r.Amount)
	}
	if r.Mode != ModeScan && r.Mode != ModeQR {
		return cur, invalid("mode %q must be scan or qr", r.Mode)
	}
	if r.IdempotencyKey == "" || len(r.IdempotencyKey) > 128 || !printable(r.IdempotencyKey) {
		return cur, invalid("idempotency_key must be 1-128 printable characters (a retry with the same key is a look-up, never a second payment)")
	}
	if len(r.Reference) > 128 || !printable(r.Reference) {
		return cur, invalid("reference must be at most 128 printable characters")
	}
	if r.Mode == ModeQR && (len(r.Reference) > 25 || !ascii(r.Reference)) {
		return cur, invalid("reference %q: in qr mode it is the order reference in the code (EMV tag 62/05): at most 25 ASCII characters", r.Reference)
	}
	return cur, nil
}

// printable reports whether s has no control characters (C0, DEL or C1): the journal
// refuses the same characters (offline.NewSale), so what the API accepts it journals.
func printable(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func refusalFor(cls qr.Classification) string {
	switch cls.Kind {
	case qr.KindMPM, qr.KindMerchantURL:
		return "this is a merchant's code, not a payment code: the customer must open the wallet's pay code"
	}
	if cls.Reason != "" {
		return "not a payment code: " + cls.Reason
	}
	return "not a payment code"
}

func nameOf(cls qr.Classification) string {
	if cls.Name != "" {
		return cls.Name
	}
	if cls.Scheme != "" {
		return cls.Scheme
	}
	return string(cls.Kind)
}

func errCode(e *ErrorInfo) string {
	if e == nil {
		return ""
	}
	return e.Code
}

// journalError turns a journal failure into what the cashier reads.
func journalError(err error) *ErrorInfo {
	var ref *offline.Refusal
	switch {
	case errors.As(err, &ref):
		return &ErrorInfo{Code: ref.Code, Message: ref.Msg}
	case errors.Is(err, offline.ErrDiskFull):
		return &ErrorInfo{Code: "journal_full", Message: "the terminal's storage is full: no sale can be recorded; call support"}
	case errors.Is(err, offline.ErrHeld):
		return &ErrorInfo{Code: "journal_held", Message: "offline sales are suspended until a technician checks the journal"}
	case errors.Is(err, offline.ErrRebase):
		return &ErrorInfo{Code: "journal_rebase", Message: "the journal was replaced after damage and must first learn the acquirer's last sale, and the acquirer does not answer: wait for it to come back, or call support"}
	case errors.Is(err, offline.ErrConflict):
		return &ErrorInfo{Code: "idempotency_conflict", Message: "the idempotency key was used for another sale"}
	}
	return &ErrorInfo{Code: "journal", Message: "the sale could not be recorded: " + err.Error()}
}

// Scan hands a code read by the scanner to the open payment, or reports why nothing
// takes it.
func (a *Agent) Scan(sc scanner.Scan) {
	a.metrics.scanned()
	a.mu.Lock()
	s, phase := a.cur, a.phase
	taken := false
	if s != nil && phase == PhaseWaitingScan {
		select {
		case s.scans <- sc:
			taken = true
		default:
		}
	}
	a.mu.Unlock()
	if taken {
		return
	}
	reason := "no_sale"
	msg := "a code was scanned with no sale open"
	switch {
	case phase == PhaseWaitingCustomer:
		reason, msg = "merchant_qr", "the open payment waits for the customer to scan the shown code"
	case s != nil:
		reason, msg = "busy", "a code is already being authorized"
	}
	a.log.Info("scan ignored", "reason", reason, "kind", sc.Classification.Kind)
	a.events.publish("scan", map[string]any{"result": "ignored", "reason": reason, "message": msg, "kind": sc.Classification.Kind})
}

func (a *Agent) snapshot(p *Payment) *Payment {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := *p
	return &c
}

func (a *Agent) publishPayment(p *Payment) {
	a.events.publish("payment", a.snapshot(p))
}

// show puts a screen on the customer display (if there is one) and remembers it, so a
// display plugged in again shows the right thing.
func (a *Agent) show(s display.Screen) {
	a.dev.show(s)
}

// update changes the open payment under the lock the API reads it with.
func (a *Agent) update(f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
}
