// Package wire holds the messages of the acquirer protocol (sync/openapi.yaml), shared by
// the terminal's client (sync/uplink) and the reference endpoint (sync/acquirer). Amounts
// are integer minor units with an ISO 4217 alphabetic currency; times are RFC 3339 UTC.
package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Error is the body of every error answer: {"error": {"code": "…", "message": "…"}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// ErrorBody wraps Error as the protocol sends it.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error codes the endpoint answers with, each with one HTTP status.
const (
	CodeBadRequest   = "bad_request"      // 400: malformed JSON, unknown field, wrong type
	CodeUnsigned     = "unauthenticated"  // 401: no or malformed signature headers
	CodeBadSignature = "bad_signature"    // 401
	CodeStale        = "stale_timestamp"  // 401
	CodeReplay       = "replayed_nonce"   // 401
	CodeUnknown      = "unknown_terminal" // 401
	CodeForbidden    = "forbidden"        // 403: signed by one terminal, about another
	CodeNotFound     = "not_found"        // 404
	CodeConflict     = "conflict"         // 409: idempotency key reused with other content
	CodeTooLarge     = "too_large"        // 413
	CodeInvalid      = "invalid"          // 422: well-formed but breaks a rule
	CodeRateLimited  = "rate_limited"     // 429, with Retry-After
	CodeUnavailable  = "unavailable"      // 503
)

// Ping is the answer to GET /v1/ping.
type Ping struct {
	Terminal   string    `json:"terminal"`
	ServerTime time.Time `json:"server_time"`
}

// AuthorizationRequest asks for online authorization of one sale (POST /v1/authorizations).
type AuthorizationRequest struct {
	ID             string    `json:"id"`              // the journal's UUIDv7
	Sequence       uint64    `json:"sequence"`        // the journal's sequence number
	IdempotencyKey string    `json:"idempotency_key"` // the POS app's key
	Reference      string    `json:"reference,omitempty"`
	CapturedAt     time.Time `json:"captured_at"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	Method         string    `json:"method"`
	Scheme         string    `json:"scheme,omitempty"`
	Credential     string    `json:"credential"` // the payment code; TLS protects it in transit
}

// Decision is an authorization outcome.
type Decision string

const (
	Approved Decision = "approved"
	Declined Decision = "declined"
	// PendingCustomer: the wallet asks the customer to confirm (a password on the phone).
	// Not final: the terminal polls the authorization's status (GET
	// /v1/authorizations/{id}) until it is approved or declined, and reverses it when its
	// deadline passes first.
	PendingCustomer Decision = "pending_customer"
	// Reversed: the terminal reversed the authorization (or a reversal arrived before it,
	// leaving a tombstone that refuses it). No money was taken, or it was given back.
	Reversed Decision = "reversed"
)

// Final reports whether no further change of the authorization is possible by itself:
// approved, declined and reversed are final (an approved one can still be reversed by the
// terminal); pending_customer is not.
func (d Decision) Final() bool { return d == Approved || d == Declined || d == Reversed }

// AuthorizationStatus answers GET /v1/authorizations/{id}: what the acquirer holds for the
// online authorization of sale id (the journal's UUIDv7), asked by the terminal when an
// authorization's answer was lost or late. State is a Decision, or StatusNotFound when no
// authorization with that id has arrived (yet: it may still be in flight).
type AuthorizationStatus struct {
	ID        string    `json:"id"`
	State     string    `json:"state"` // approved, declined, pending_customer, reversed, not_found
	Reason    string    `json:"reason,omitempty"`
	AuthCode  string    `json:"auth_code,omitempty"`
	Amount    int64     `json:"amount,omitempty"`
	Currency  string    `json:"currency,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
}

// StatusNotFound is AuthorizationStatus.State for an authorization the acquirer has not
// received.
const StatusNotFound = "not_found"

// ReversalRequest is POST /v1/authorizations/{id}/reversal: undo the online authorization
// of sale id, whatever its state, idempotently. An approved authorization is reversed (the
// money goes back), a pending one is closed, and one that has not arrived yet is refused
// when it does (a tombstone, kept for ever). Sending it again returns the same answer.
type ReversalRequest struct {
	ID             string `json:"id"`
	Sequence       uint64 `json:"sequence"`
	IdempotencyKey string `json:"idempotency_key"` // the sale's key
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Reason         string `json:"reason,omitempty"` // e.g. "no answer within 30 s"
}

// ReversalResponse answers a reversal: State is always "reversed"; Previous is what the
// authorization was when the first reversal arrived (approved, declined,
// pending_customer, or not_found for a tombstone).
type ReversalResponse struct {
	ID         string    `json:"id"`
	State      string    `json:"state"`
	Previous   string    `json:"previous"`
	ReversedAt time.Time `json:"reversed_at"`
}

// LedgerEntry is one sale as the acquirer holds it (acquirerd ledger --json): how
// operators reconcile and how tests check that terminal and acquirer agree. Captured is
// what the customer pays now, in minor units: Amount when approved, 0 when declined,
// reversed, voided or never authorized.
type LedgerEntry struct {
	Terminal       string `json:"terminal"`
	Sequence       uint64 `json:"sequence"`
	SaleID         string `json:"sale_id"`
	IdempotencyKey string `json:"idempotency_key"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	State          string `json:"state"`
	Captured       int64  `json:"captured"`
	Refunded       int64  `json:"refunded"`
	Source         string `json:"source"` // online | offline
}

// AuthorizationResponse answers an authorization (also for a retried request: the same
// idempotency key gets the original answer).
type AuthorizationResponse struct {
	ID        string    `json:"id"`
	Decision  Decision  `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	AuthCode  string    `json:"auth_code,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Record is one journal record in a store-and-forward batch. PrevHash, Hash and MAC are the
// journal's chain (hex): the endpoint recomputes them to prove nothing was changed or lost.
//
// The fields that the chain covers are exactly those of the journal's canonical entry
// (offline.Entry): ID, Sequence, CapturedAt (milliseconds), Amount, Terminal,
// IdempotencyKey, Reference, Currency, Method, Scheme and CredentialTag (hex of the keyed
// credential digest; empty when the sale has none), and for a refund Kind and Parent. Offline, State and Credential are not
// covered: the credential is checked against CredentialTag instead, when it is sent.
type Record struct {
	ID             string    `json:"id"`
	Terminal       string    `json:"terminal,omitempty"` // empty: the terminal that signed the batch
	Sequence       uint64    `json:"sequence"`
	IdempotencyKey string    `json:"idempotency_key"`
	Reference      string    `json:"reference,omitempty"`
	CapturedAt     time.Time `json:"captured_at"`
	Amount         int64     `json:"amount"`
	Currency       string    `json:"currency"`
	Method         string    `json:"method"`
	Scheme         string    `json:"scheme,omitempty"`
	Kind           string    `json:"kind,omitempty"`   // "" or "sale"; "refund" of the sale Parent
	Parent         string    `json:"parent,omitempty"` // a refund's sale id
	Offline        bool      `json:"offline"`
	State          string    `json:"state"` // the terminal's state when sent: stored, approved, …
	Credential     string    `json:"credential,omitempty"`
	CredentialTag  string    `json:"credential_tag,omitempty"`
	PrevHash       string    `json:"prev_hash"`
	Hash           string    `json:"hash"`
	MAC            string    `json:"mac"`
}

// Batch is POST /v1/terminals/{terminal}/batches: records in ascending sequence order.
type Batch struct {
	Records []Record `json:"records"`
}

// MaxBatch is the most records one batch may hold.
const MaxBatch = 500

// Status is the endpoint's answer for one record.
type Status string

const (
	Accepted  Status = "accepted"  // stored now, durably
	Duplicate Status = "duplicate" // stored before (same sequence or idempotency key, same content)
	Rejected  Status = "rejected"  // not stored; Reason says why
)

// RecordResult is the per-record answer to a batch.
type RecordResult struct {
	Sequence uint64 `json:"sequence"`
	ID       string `json:"id"`
	Status   Status `json:"status"`
	Reason   string `json:"reason,omitempty"`
}

// BatchResponse answers a batch: one result per record, in order, and the high-water mark
// (the highest sequence such that every record up to it is stored). Gaps and Forks report
// chain problems the endpoint saw.
type BatchResponse struct {
	Results   []RecordResult `json:"results"`
	HighWater uint64         `json:"high_water"`
	Gaps      []Gap          `json:"gaps,omitempty"`
}

// Gap is a run of missing sequence numbers.
type Gap struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// Result is an outcome of a deferred (offline) authorization in the results feed.
type Result struct {
	Cursor    uint64    `json:"cursor"`
	ID        string    `json:"id"`
	Sequence  uint64    `json:"sequence"`
	Decision  Decision  `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	AuthCode  string    `json:"auth_code,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

// Results is GET /v1/terminals/{terminal}/results?after=C.
type Results struct {
	Results []Result `json:"results"`
	Next    uint64   `json:"next"` // pass as after= next time
}

// Order is the status of a merchant-presented (dynamic QR) sale: GET /v1/orders/{reference}.
type Order struct {
	Reference string    `json:"reference"`
	State     string    `json:"state"` // pending, paid, expired, canceled, closed, refunded
	Amount    int64     `json:"amount"`
	Currency  string    `json:"currency"`
	Scheme    string    `json:"scheme,omitempty"`
	PaidAt    time.Time `json:"paid_at,omitzero"`
}

// RefundRequest is POST /v1/refunds: refund Amount of the sale SaleID online. ID,
// Sequence and IdempotencyKey are the refund's own journal record (kind "refund", Parent
// SaleID), which is later uploaded in a batch like any record. The same idempotency key
// with the same content (everything but Reason and CapturedAt) gets the original answer
// for ever; with other content, 409.
type RefundRequest struct {
	ID             string `json:"id"`
	Sequence       uint64 `json:"sequence"`
	IdempotencyKey string `json:"idempotency_key"`
	SaleID         string `json:"sale_id"`
	Amount         int64  `json:"amount"`
	Currency       string `json:"currency"`
	Reason         string `json:"reason,omitempty"`
	// CapturedAt is the refund record's capture time, which the acquirer's totals count it
	// by; when absent, the time the acquirer received it.
	CapturedAt time.Time `json:"captured_at,omitzero"`
}

// RefundResponse answers a refund: Decision is approved or declined (Reason says why, e.g.
// the amount exceeds what is left). Refunded is the total refunded of the sale after this
// refund, Captured what the sale's customer pays now (the sale's amount less Refunded; 0
// when the sale is not approved).
type RefundResponse struct {
	ID        string    `json:"id"`
	SaleID    string    `json:"sale_id"`
	Decision  Decision  `json:"decision"`
	Reason    string    `json:"reason,omitempty"`
	Refunded  int64     `json:"refunded"`
	Captured  int64     `json:"captured"`
	DecidedAt time.Time `json:"decided_at"`
}

// OrderClose answers POST /v1/orders/{reference}/close: State is "closed" for an order
// closed before the customer paid (a later payment is refused), "refunded" (Refunded true)
// for one the customer had already paid, which the acquirer refunded; an order that had
// expired or was canceled keeps that state. Amount and Currency are the order's sale as
// the terminal uploaded it (0 and "" before the record arrives).
type OrderClose struct {
	Reference string `json:"reference"`
	State     string `json:"state"`
	Refunded  bool   `json:"refunded"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Tally is a count and the amounts by currency (minor units).
type Tally struct {
	Count  int64            `json:"count"`
	Amount map[string]int64 `json:"amount"`
}

// Add counts one more amount of currency.
func (t *Tally) Add(amount int64, currency string) {
	if t.Amount == nil {
		t.Amount = map[string]int64{}
	}
	t.Count++
	t.Amount[currency] += amount
}

// Totals is GET /v1/terminals/{terminal}/totals?from=…&to=…: the terminal's sales whose
// capture time (the journal's captured_at, as sent in the authorization or the record)
// is in [From, To), as the acquirer holds them. Sales counts every sale whatever its
// state; ByState splits them by the ledger's state (approved, declined, reversed,
// pending_customer, voided, refunded, …); ByMethod (wallet-code, emv-cpm, merchant-qr) and
// ByScheme (wechat-pay, alipay, …; "unknown" when none) split the approved ones. Refunds
// are the approved refunds whose own capture time is in the period (of any sale).
// Captured is the net money of the period by currency: approved sales less those refunds.
type Totals struct {
	Terminal string           `json:"terminal"`
	From     time.Time        `json:"from"`
	To       time.Time        `json:"to"`
	Sales    Tally            `json:"sales"`
	ByMethod map[string]Tally `json:"by_method"`
	ByScheme map[string]Tally `json:"by_scheme"`
	ByState  map[string]Tally `json:"by_state"`
	Refunds  Tally            `json:"refunds"`
	Captured map[string]int64 `json:"captured"`
}

// Policy is the offline risk policy the acquirer sets for a terminal.
type Policy struct {
	MethodsOffline []string         `json:"methods_offline"`
	MaxAmount      map[string]int64 `json:"max_amount"`      // per transaction, by currency
	MaxOutstanding map[string]int64 `json:"max_outstanding"` // total stored, by currency
	MaxCount       int              `json:"max_count"`
	MaxAgeSeconds  int64            `json:"max_age_seconds"`
}

// TerminalConfig is GET /v1/terminals/{terminal}/config.
type TerminalConfig struct {
	Terminal string `json:"terminal"`
	Policy   Policy `json:"policy"`
}

// ChainHead is GET /v1/terminals/{terminal}/chain: the highest sequence the acquirer holds
// for the terminal and that record's hash (0 and "" when it holds none). A terminal whose
// journal was damaged and set aside starts its fresh journal after it, chained onto that
// hash, so its new records neither collide with the old ones nor fork the chain.
type ChainHead struct {
	Terminal string `json:"terminal"`
	Sequence uint64 `json:"sequence"`
	Hash     string `json:"hash,omitempty"`
}

// Decode reads one JSON value of type T strictly: unknown fields, trailing data and wrong
// types are errors that name the problem.
func Decode[T any](r io.Reader) (T, error) {
	var v T
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, fmt.Errorf("decode %T: %w", v, err)
	}
	if dec.More() {
		return v, fmt.Errorf("decode %T: trailing data after the JSON value", v)
	}
	return v, nil
}
