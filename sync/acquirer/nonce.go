package acquirer

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent/sync/signing"
)

// A request that writes (a batch, an authorization) records its nonce in the transaction
// that stores its effect, not in one of its own before: one durable commit per request
// instead of two. The signature is still checked first; a replayed nonce then rolls the
// whole transaction back (signing.ErrReplay), so nothing happens twice. A request that
// ends before its transaction (a validation error) has no effect, so its nonce need not
// be kept.

// deferredNonce is the nonce of a request whose handler opted in, set by the verifier.
type deferredNonce struct {
	terminal, nonce string
	expires         time.Time
	done            bool // recorded by a committed transaction
}

type nonceKey struct{}

// withDeferredNonce returns ctx carrying a slot for the request's nonce.
func withDeferredNonce(ctx context.Context) context.Context {
	return context.WithValue(ctx, nonceKey{}, &deferredNonce{})
}

func deferredFrom(ctx context.Context) *deferredNonce {
	d, _ := ctx.Value(nonceKey{}).(*deferredNonce)
	return d
}

// deferringNonces is the verifier's signing.Nonces: a request carrying a slot has its
// nonce put there (and taken as new for now); any other is checked by the store at once.
type deferringNonces struct{ signing.Nonces }

func (n deferringNonces) Seen(ctx context.Context, terminal, nonce string, expires time.Time) (bool, error) {
	if d := deferredFrom(ctx); d != nil && d.nonce == "" {
		d.terminal, d.nonce, d.expires = terminal, nonce, expires
		return false, nil
	}
	return n.Nonces.Seen(ctx, terminal, nonce, expires)
}

// purgeCalls amortises the purge of expired nonces over the deferred ones.
var purgeCalls atomic.Uint64

// recordDeferredNonce records the request's deferred nonce in tx, if ctx carries one not
// yet recorded: an error wrapping signing.ErrReplay when it was used before.
func recordDeferredNonce(ctx context.Context, tx execer, d dialect, now time.Time) error {
	n := deferredFrom(ctx)
	if n == nil || n.done || n.nonce == "" {
		return nil
	}
	if purgeCalls.Add(1)%1024 == 1 {
		if _, err := tx.ExecContext(ctx, d.q(`DELETE FROM nonces WHERE expires_at < ?`), now.Unix()); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, d.q(`INSERT INTO nonces (terminal, nonce, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (terminal, nonce) DO UPDATE SET expires_at = excluded.expires_at WHERE nonces.expires_at < ?`),
		n.terminal, n.nonce, n.expires.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("check nonce: %w", err)
	}
	if k, err := res.RowsAffected(); err != nil {
		return err
	} else if k == 0 {
		return fmt.Errorf("check nonce: %w", signing.ErrReplay)
	}
	return nil
}

// nonceCommitted notes that the transaction that recorded ctx's nonce committed.
func nonceCommitted(ctx context.Context) {
	if n := deferredFrom(ctx); n != nil && n.nonce != "" {
		n.done = true
	}
}
