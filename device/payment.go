package device

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the payment store

	"github.com/posagent/posagent"
)

// Mode is how the customer pays.
type Mode string

const (
	// ModeScan: the customer shows a payment code and the terminal's scanner reads it
	// (customer-presented).
	ModeScan Mode = "scan"
	// ModeQR: the terminal shows a dynamic EMV merchant-presented code with the amount
	// and an order reference; the customer's wallet scans it and pays the order.
	ModeQR Mode = "qr"
)

// PaymentState is a payment's state in the local API. It extends the journal's sale
// states (posagent.State) with the one before a sale exists:
//
//	waiting      the payment is open: waiting for the customer's code (scan) or for the
//	             customer to pay the shown code (qr)
//	authorizing  the sale is journaled and sent for online authorization
//	approved     paid (online, or settled after upload)
//	stored       accepted offline under the risk policy: hand over the goods; it is
//	             confirmed (approved or declined) after upload
//	uploading    accepted offline and sent; outcome pending
//	declined, canceled, failed   final; error says why
//
// approved, stored and uploading mean "accepted at the counter".
type PaymentState string

// The payment states.
const (
	PaymentWaiting     PaymentState = "waiting"
	PaymentAuthorizing PaymentState = "authorizing"
	PaymentApproved    PaymentState = "approved"
	PaymentStored      PaymentState = "stored"
	PaymentUploading   PaymentState = "uploading"
	PaymentDeclined    PaymentState = "declined"
	PaymentCanceled    PaymentState = "canceled"
	PaymentFailed      PaymentState = "failed"
)

// Accepted reports whether the counter may hand over the goods.
func (s PaymentState) Accepted() bool {
	return s == PaymentApproved || s == PaymentStored || s == PaymentUploading
}

// Done reports whether the checkout is over for this payment (nothing more happens at
// the counter; an offline sale may still be settled later).
func (s PaymentState) Done() bool { return s != PaymentWaiting && s != PaymentAuthorizing }

// ErrorInfo is a machine code and a message a cashier can read.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

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
}

// amount returns the payment's amount as a domain value.
func (p *Payment) amount() posagent.Amount {
	return posagent.Amount{Minor: p.Amount, Currency: mustCurrency(p.Currency)}
}

// paymentState maps a journal state.
func paymentState(s posagent.State) PaymentState {
	return PaymentState(s) // the names are the same by design
}

// store keeps payments durably in their own SQLite file next to the journal, so a
// retried create is a look-up even after a restart, and an open payment survives one.
// The journal stays the ledger of sales; a payment points at its sale (SaleID) once there
// is one (a payment canceled before the customer showed a code never becomes a sale).
type store struct{ db *sql.DB }

func openStore(path string) (*store, error) {
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=FULL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open payment store: %w", err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS payments (
		id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, done INTEGER NOT NULL, data TEXT NOT NULL)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("open payment store %s: %w", path, err)
	}
	return &store{db}, nil
}

func (s *store) Close() error { return s.db.Close() }

// create stores a new payment; errExists when its idempotency key is taken.
func (s *store) create(ctx context.Context, p *Payment) error {
	data, _ := json.Marshal(p)
	_, err := s.db.ExecContext(ctx, `INSERT INTO payments (id, idempotency_key, done, data) VALUES (?, ?, ?, ?)`,
		p.ID, p.IdempotencyKey, p.State.Done(), string(data))
	if err != nil && isUnique(err) {
		return errExists
	}
	return err
}

func (s *store) save(ctx context.Context, p *Payment) error {
	data, _ := json.Marshal(p)
	_, err := s.db.ExecContext(ctx, `UPDATE payments SET done = ?, data = ? WHERE id = ?`, p.State.Done(), string(data), p.ID)
	return err
}

var errExists = errors.New("idempotency key exists")

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func (s *store) get(ctx context.Context, where string, arg any) (*Payment, error) {
	var data string
	err := s.db.QueryRowContext(ctx, `SELECT data FROM payments WHERE `+where+` = ?`, arg).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, err
	}
	var p Payment
	if err := json.Unmarshal([]byte(data), &p); err != nil {
		return nil, fmt.Errorf("payment store: %w", err)
	}
	return &p, nil
}

func (s *store) byID(ctx context.Context, id string) (*Payment, error) { return s.get(ctx, "id", id) }
func (s *store) byKey(ctx context.Context, key string) (*Payment, error) {
	return s.get(ctx, "idempotency_key", key)
}

// open returns the payments that were not done: what a restart resumes.
func (s *store) open(ctx context.Context) ([]*Payment, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT data FROM payments WHERE done = 0 ORDER BY rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Payment
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, err
		}
		var p Payment
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			return nil, err
		}
		out = append(out, &p)
	}
	return out, rows.Err()
}

// bySale finds the payment of a journal record (for outcomes after upload).
func (s *store) bySale(ctx context.Context, saleID string) (*Payment, error) {
	return s.get(ctx, "json_extract(data, '$.sale_id')", saleID)
}

var errNotFound = errors.New("no such payment")
