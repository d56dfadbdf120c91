package signing

import (
	"context"
	"sync"
	"time"
)

// MemoryNonces is a Nonces for a single process: a map pruned of expired entries as it
// grows. An acquirer with several nodes keeps nonces in its database instead.
type MemoryNonces struct {
	Now func() time.Time // time.Now when nil

	mu   sync.Mutex
	seen map[string]time.Time
}

// Seen implements Nonces.
func (m *MemoryNonces) Seen(_ context.Context, terminal, nonce string, expires time.Time) (bool, error) {
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	t := now()
	if len(m.seen) >= 1024 && len(m.seen)%1024 == 0 {
		for k, exp := range m.seen {
			if t.After(exp) {
				delete(m.seen, k)
			}
		}
	}
	key := terminal + "\x00" + nonce
	if exp, ok := m.seen[key]; ok && !t.After(exp) {
		return true, nil
	}
	m.seen[key] = expires
	return false, nil
}

// StaticKeys is a Keys backed by a map, for tests and tools.
type StaticKeys map[string][]byte

// Secret implements Keys.
func (k StaticKeys) Secret(_ context.Context, terminal string) ([]byte, error) {
	if s, ok := k[terminal]; ok {
		return s, nil
	}
	return nil, ErrUnknown
}
