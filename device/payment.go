package device

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/checkout"
	"github.com/posagent/posagent/offline"
)

// Mode is how the customer pays: ModeScan, the customer shows a payment code and the
// terminal's scanner reads it (customer-presented); ModeQR, the terminal shows a dynamic
// EMV merchant-presented code with the amount and an order reference, and the customer's
// wallet scans it and pays the order.
type Mode = checkout.Mode

// The modes.
const (
	ModeScan = checkout.ModeScan
	ModeQR   = checkout.ModeQR
)

// PaymentState is a payment's state in the local API: the checkout core's (see package
// checkout for the machine):
//
//	waiting           the payment is open: waiting for the customer's code (scan) or for
//	                  the customer to pay the shown code (qr)
//	authorizing       the sale is journaled and sent for online authorization
//	pending_customer  the wallet asks the customer to confirm (e.g. a password); polled
//	checking          the authorization's outcome is unknown (no answer in time): the agent
//	                  asks the acquirer, and reverses it when the check window ends
//	approved          paid (online, or settled after upload)
//	stored            accepted offline under the risk policy: hand over the goods; it is
//	                  confirmed (approved or declined) after upload
//	uploading         accepted offline and sent; outcome pending
//	declined, canceled, failed   final; error says why (error code "reversed": the
//	                  authorization was reversed, no money was taken)
//
// approved, stored and uploading mean "accepted at the counter".
type PaymentState = checkout.State

// The payment states.
const (
	PaymentWaiting         = checkout.Waiting
	PaymentAuthorizing     = checkout.Authorizing
	PaymentPendingCustomer = checkout.PendingCustomer
	PaymentChecking        = checkout.Checking
	PaymentApproved        = checkout.Approved
	PaymentStored          = checkout.Stored
	PaymentUploading       = checkout.Uploading
	PaymentDeclined        = checkout.Declined
	PaymentCanceled        = checkout.Canceled
	PaymentFailed          = checkout.Failed
)

// ErrorInfo is a machine code and a message a cashier can read.
type ErrorInfo = checkout.Error

// ReceiptInfo says whether the receipts of a payment were printed.
type ReceiptInfo struct {
	Printed int    `json:"printed"`          // copies printed
	Error   string `json:"error,omitempty"`  // why not, e.g. "printer out of paper"
	Reason  string `json:"reason,omitempty"` // paper-end, cover-open, offline, printer-error, no-printer
}

// Payment is one payment of the local API.
type Payment struct {
	ID             string       `json:"id"`
	State          PaymentState `json:"state"`
	Amount         int64        `json:"amount"`
	Currency       string       `json:"currency"`
	Mode           Mode         `json:"mode"`
	Method         string       `json:"method,omitempty"`
	Scheme         string       `json:"scheme,omitempty"`
	SchemeName     string       `json:"scheme_name,omitempty"`
	Credential     string       `json:"credential_masked,omitempty"`
	Offline        bool         `json:"offline"`
	Sequence       uint64       `json:"sequence,omitempty"`
	SaleID         string       `json:"sale_id,omitempty"` // the journal record
	Reference      string       `json:"reference,omitempty"`
	IdempotencyKey string       `json:"idempotency_key"`
	OrderReference string       `json:"order_reference,omitempty"` // qr mode: the acquirer's order
	QR             string       `json:"qr,omitempty"`              // qr mode: the EMV MPM payload shown
	AuthCode       string       `json:"auth_code,omitempty"`
	Error          *ErrorInfo   `json:"error,omitempty"`
	Receipt        *ReceiptInfo `json:"receipt,omitempty"`
	CreatedAt      time.Time    `json:"created_at"`
	UpdatedAt      time.Time    `json:"updated_at"`
	CompletedAt    *time.Time   `json:"completed_at,omitempty"`
	ExpiresAt      time.Time    `json:"expires_at"` // the scan or QR timeout
	// ResolveBy: while checking or pending_customer, when the agent reverses the
	// authorization if its outcome is still unknown.
	ResolveBy *time.Time `json:"resolve_by,omitempty"`
	// RefundedAmount is what its approved refunds gave back; PendingRefundAmount what
	// refunds not decided yet (sent, or stored to be forwarded) may give back. Refunds
	// lists them (GET /v1/payments/{id}).
	RefundedAmount      int64    `json:"refunded_amount"`
	PendingRefundAmount int64    `json:"pending_refund_amount,omitempty"`
	Refunds             []Refund `json:"refunds,omitempty"`
}

// storedPayment is a payment as the journal keeps it: the API's view and the checkout
// core's state, so a restart resumes exactly where the payment was.
type storedPayment struct {
	*Payment
	Core checkout.Payment `json:"core"`
}

// row encodes the payment for the journal.
func (p *Payment) row(core checkout.Payment) *offline.PaymentRow {
	data, _ := json.Marshal(storedPayment{p, core})
	return &offline.PaymentRow{ID: p.ID, IdempotencyKey: p.IdempotencyKey, SaleID: p.SaleID, State: string(p.State),
		Done: !p.State.Open(), Data: data, CreatedAt: p.CreatedAt}
}

// decodePayment reads a payment the journal keeps; the row's state is authoritative.
func decodePayment(r offline.PaymentRow) (*Payment, checkout.Payment, error) {
	sp := storedPayment{Payment: new(Payment)}
	if err := json.Unmarshal(r.Data, &sp); err != nil {
		return nil, sp.Core, fmt.Errorf("payment %s in the journal: %w", r.ID, err)
	}
	p := sp.Payment
	p.State = PaymentState(r.State)
	sp.Core.State = p.State
	if r.SaleID != "" {
		p.SaleID = r.SaleID
	}
	return p, sp.Core, nil
}

// amount returns the payment's amount as a domain value.
func (p *Payment) amount() posagent.Amount {
	return posagent.Amount{Minor: p.Amount, Currency: mustCurrency(p.Currency)}
}

// paymentState maps a journal state.
func paymentState(s posagent.State) PaymentState {
	return PaymentState(s) // the names are the same by design
}
