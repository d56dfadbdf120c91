package posagent

import (
	"errors"
	"fmt"
	"time"
)

// State is where a sale is in its life. The values are stable identifiers used in JSON, in
// the journal and on the command line.
//
//	online:  authorizing → approved | declined | failed | canceled
//	         authorizing → stored   (the acquirer did not answer and the offline policy allows it)
//	offline: stored → uploading → approved | declined | failed (rejected by the acquirer)
//	         stored → canceled      (voided at the counter before it was sent)
//
// approved, declined, canceled and failed are final.
type State string

// The states of a sale.
const (
	StateAuthorizing State = "authorizing" // sent (or about to be sent) for online authorization
	StateApproved    State = "approved"
	StateDeclined    State = "declined"
	StateStored      State = "stored"    // accepted offline, waiting to be uploaded
	StateUploading   State = "uploading" // sent to the acquirer at least once, outcome pending
	StateCanceled    State = "canceled"
	StateFailed      State = "failed" // could not complete (error, timeout, rejected record)
)

// States lists every state in life-cycle order.
var States = []State{StateAuthorizing, StateStored, StateUploading, StateApproved, StateDeclined, StateCanceled, StateFailed}

// transitions is the one table of legal moves; everything that changes a state asks it.
var transitions = map[State][]State{
	StateAuthorizing: {StateApproved, StateDeclined, StateFailed, StateCanceled, StateStored},
	StateStored:      {StateUploading, StateCanceled},
	StateUploading:   {StateApproved, StateDeclined, StateFailed},
}

// ErrTransition is the sentinel of an illegal state change.
var ErrTransition = errors.New("illegal state transition")

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if s == v {
			return true
		}
	}
	return false
}

// Final reports whether no transition leaves s.
func (s State) Final() bool { return s.Valid() && len(transitions[s]) == 0 }

// Outstanding reports whether a sale in state s is accepted offline and not yet settled
// with the acquirer: what the offline risk policy counts.
func (s State) Outstanding() bool { return s == StateStored || s == StateUploading }

// ParseState reads a state name; the error wraps ErrInvalidInput and lists the states.
func ParseState(name string) (State, error) {
	s := State(name)
	if !s.Valid() {
		return "", Invalidf("unknown state %q (states: authorizing, stored, uploading, approved, declined, canceled, failed)", name)
	}
	return s, nil
}

// CheckTransition returns nil if a sale may move from one state to the other, and else an
// error wrapping ErrTransition that names both.
func CheckTransition(from, to State) error {
	for _, t := range transitions[from] {
		if t == to {
			return nil
		}
	}
	return &TransitionError{From: from, To: to}
}

// TransitionError is an illegal state change.
type TransitionError struct{ From, To State }

func (e *TransitionError) Error() string {
	if e.From.Final() {
		return fmt.Sprintf("illegal state transition %s → %s: %s is final", e.From, e.To, e.From)
	}
	return fmt.Sprintf("illegal state transition %s → %s", e.From, e.To)
}

// Unwrap returns ErrTransition.
func (e *TransitionError) Unwrap() error { return ErrTransition }

// Kind is what a journal record is: a sale, or a refund of an earlier sale (Parent).
type Kind string

// The kinds of journal record.
const (
	KindSale   Kind = "sale"
	KindRefund Kind = "refund"
)

// Sale is a sale as the terminal's journal holds it. The journal assigns ID, Sequence,
// CapturedAt and the chain; the credential itself never appears here, only masked.
type Sale struct {
	ID               string // UUIDv7
	Kind             Kind   // KindSale, or KindRefund of the sale Parent
	Parent           string // a refund's sale id
	Sequence         uint64
	Terminal         string
	IdempotencyKey   string
	Reference        string
	CapturedAt       time.Time
	Amount           Amount
	Method           Method
	Scheme           Scheme
	CredentialMasked string
	Offline          bool
	State            State
	Attempts         int
	LastError        string
	UpdatedAt        time.Time
	AckedAt          time.Time // zero until the acquirer acknowledged the record
}
