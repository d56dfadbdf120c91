package acquirer

import (
	"context"
	"errors"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

// Store is the acquirer's source of truth. Every method is one transaction: what it
// reports as stored is durably stored, and concurrent calls from several nodes (on
// PostgreSQL) or goroutines serialise on the database's unique keys, not on memory.
type Store interface {
	// Secret returns a terminal's request-signing key, derived from its provisioned secret
	// as the terminal derives it (offline.Key.SigningKey), or an error wrapping
	// signing.ErrUnknown.
	Secret(ctx context.Context, terminal string) ([]byte, error)
	// ProvisionedSecret returns the secret provisioned on the terminal (its key file), from
	// which the chain verifier derives the keys of the terminal's journal; an error wrapping
	// signing.ErrUnknown for a terminal it does not know.
	ProvisionedSecret(ctx context.Context, terminal string) ([]byte, error)
	// Seen records a nonce until expires and reports whether it was already recorded.
	Seen(ctx context.Context, terminal, nonce string, expires time.Time) (bool, error)
	// AddTerminal registers a terminal with its provisioned secret (offline.KeySize bytes)
	// and policy; ErrExists if present.
	AddTerminal(ctx context.Context, terminal string, secret []byte, policy wire.Policy) error
	// Config returns a terminal's configuration.
	Config(ctx context.Context, terminal string) (wire.TerminalConfig, error)
	// Authorize stores the decision for an authorization request, or returns the answer
	// for the same (terminal, idempotency key) as it stands now: the decision stored
	// before, a pending one's outcome once its time has passed, "reversed" once the
	// terminal reversed it. A reuse of the key with other content, or of the sale id under
	// another key, is ErrConflict. A sale the terminal reversed before its authorization
	// arrived (a tombstone) is answered reversed, ReasonTombstone, and nothing is decided.
	Authorize(ctx context.Context, terminal string, req wire.AuthorizationRequest, decide func() Outcome) (wire.AuthorizationResponse, error)
	// AuthorizationStatus returns what the store holds for the online authorization of
	// sale id by terminal: state wire.StatusNotFound when none arrived (or it is another
	// terminal's). A pending authorization whose time has passed is resolved, and stored so.
	AuthorizationStatus(ctx context.Context, terminal, id string) (wire.AuthorizationStatus, error)
	// Reverse reverses the online authorization of sale req.ID, whatever its state
	// (approved, declined, pending_customer), or leaves a tombstone that refuses it when it
	// has not arrived. The first reversal's answer is kept and returned again for ever. A
	// reversal whose amount or currency differs from the authorization's, or whose key
	// belongs to another sale, is ErrConflict.
	Reverse(ctx context.Context, terminal string, req wire.ReversalRequest) (wire.ReversalResponse, error)
	// Ledger calls fn with every sale the store knows (of terminal, or all with ""), in
	// order of terminal and sequence, streaming: see wire.LedgerEntry. It writes nothing
	// (pending authorizations are shown resolved as they will be read); fn must not call
	// the store. An error from fn stops it and is returned.
	Ledger(ctx context.Context, terminal string, fn func(wire.LedgerEntry) error) error
	// ChainHead returns the highest sequence stored for terminal and its record's hash.
	ChainHead(ctx context.Context, terminal string) (wire.ChainHead, error)
	// StoreBatch stores records in order and answers each; decide is called for every
	// newly accepted offline record and its outcome appended to the results feed in the
	// same transaction.
	StoreBatch(ctx context.Context, terminal string, recs []wire.Record, check func(prev *wire.Record, rec wire.Record) string, decide func(wire.Record) wire.Result) (wire.BatchResponse, error)
	// Results returns up to limit outcomes after the cursor.
	Results(ctx context.Context, terminal string, after uint64, limit int) (wire.Results, error)
	// Order returns a merchant-presented order, creating it pending when first asked for,
	// and how many times it has been asked for (this one included).
	Order(ctx context.Context, terminal, reference string) (wire.Order, int, error)
	// Refund decides an online refund of sale req.SaleID (see wire.RefundRequest): the
	// answer stored before for the same (terminal, idempotency key) and content, for ever;
	// ErrConflict for the key or the refund's id reused with other content. A refund is
	// declined (with the reason) when the sale is unknown for this terminal, not approved,
	// in another currency, or when the amount exceeds what is left of it (its amount less
	// the refunds approved so far). Refunds of one sale serialise. A refund record
	// uploaded in state stored or uploading is decided by the same rules in StoreBatch.
	Refund(ctx context.Context, terminal string, req wire.RefundRequest) (wire.RefundResponse, error)
	// CloseOrder closes terminal's merchant-presented order: pending becomes closed (never
	// paid later), paid becomes refunded (the acquirer gives the money back), anything
	// else stays; idempotently. payFirst pays a pending order first, at the store's clock:
	// the customer's payment racing the close (the simulator's -RACE). An order of another
	// terminal is ErrNotFound; one never polled is created closed.
	CloseOrder(ctx context.Context, terminal, reference string, payFirst bool) (wire.OrderClose, error)
	// Totals returns terminal's sales captured in [from, to) and its refunds captured in
	// it, grouped as wire.Totals says. It writes nothing.
	Totals(ctx context.Context, terminal string, from, to time.Time) (wire.Totals, error)
	// SetOrder changes a pending order's state (the simulator "pays" orders with it); an
	// order no longer pending is ErrConflict, an unknown one ErrNotFound.
	SetOrder(ctx context.Context, reference, state, scheme string, at time.Time) error
	Close() error
}

// Clocked is a store whose clock can be set (both stores': time.Now by default): it
// stamps what the store writes and decides when a pending authorization resolves. Set it
// before the store is used.
type Clocked interface {
	SetClock(now func() time.Time)
}

var (
	_ Clocked = (*SQLite)(nil)
	_ Clocked = (*Postgres)(nil)
)

// Sentinels callers branch on.
var (
	ErrExists   = errors.New("already exists")
	ErrConflict = errors.New("idempotency key reused with different content")
	ErrNotFound = errors.New("not found")
)
