package uplink

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/offline"
)

// TestSyncer_Rotation: a terminal whose secret was rotated still uploads the records it
// journaled under the old secret while the grace lasts; its journal then moves to the new
// secret (Rekey) and the chain goes on at the acquirer under it. Records under the old
// secret after the grace are refused.
func TestSyncer_Rotation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	url := e.serve(nil)
	e.fill(20)
	// Rotated before those records were sent: the terminal still runs on the old key.
	next := bytes.Repeat([]byte{0x6b}, offline.KeySize)
	if err := e.store.RotateTerminal(ctx, terminalID, next, time.Hour); err != nil {
		t.Fatal(err)
	}
	rep, err := e.syncer(e.client(url)).Once(ctx)
	if err != nil || rep.Accepted != 20 || len(rep.Rejected) != 0 {
		t.Fatalf("records under the replaced secret within the grace: %+v, %v", rep, err)
	}

	// Provisioned with the new secret: the journal moves to it.
	nextKey, err := offline.NewKey(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.journal.Rekey(ctx, nextKey); err != nil {
		t.Fatalf("rekey: %v", err)
	}
	e.journal.Close()
	j, err := offline.Open(filepath.Join(e.dir, "journal.db"), offline.Options{Key: nextKey, Terminal: terminalID, Policy: offline.Policy{Methods: []posagent.Method{posagent.MethodWalletCode, posagent.MethodEMVCPM},
		Limits: map[string]offline.Limit{"CNY": {PerTransaction: 1 << 40, Outstanding: 1 << 60}}, MaxCount: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if rep, err := j.Verify(ctx); err != nil || rep.Broken != nil || !rep.MACChecked {
		t.Fatalf("the rekeyed journal: %+v %v", rep, err)
	}
	e.journal, e.key = j, nextKey
	e.fillFrom(20, 10)
	rep, err = e.syncer(e.client(url)).Once(ctx)
	if err != nil || rep.Accepted != 10 || len(rep.Rejected) != 0 || rep.HighWater != 30 {
		t.Fatalf("records under the new secret after the rekey: %+v, %v", rep, err)
	}
	if records, _, _, lo, hi, _ := e.acquirerCounts(); records != 30 || lo != 1 || hi != 30 {
		t.Fatalf("acquirer holds %d records %d..%d, want 30, 1..30", records, lo, hi)
	}
}

// TestServer_RetiredSecretAfterGrace: once the grace has passed, a record journaled under
// the replaced secret is refused (the request itself signed with the current one).
func TestServer_RetiredSecretAfterGrace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	url := e.serve(nil)
	e.fill(3)
	next := bytes.Repeat([]byte{0x6b}, offline.KeySize)
	if err := e.store.RotateTerminal(ctx, terminalID, next, 0); err != nil {
		t.Fatal(err)
	}
	nextKey, err := offline.NewKey(next)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(url, terminalID, nextKey) // signs with the new secret; the records carry the old one's MACs
	if err != nil {
		t.Fatal(err)
	}
	rep, err := (&Syncer{Journal: e.journal, Client: c, Key: e.key}).Once(ctx)
	if err == nil && len(rep.Rejected) == 0 {
		t.Fatalf("records under a secret whose grace is over were accepted: %+v", rep)
	}
	if records, _, _, _, _, _ := e.acquirerCounts(); records != 0 {
		t.Fatalf("acquirer holds %d records, want 0", records)
	}
}
