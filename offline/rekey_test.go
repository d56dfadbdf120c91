package offline

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
)

// TestJournal_Rekey moves a journal to a rotated secret: refused while records wait for
// the acquirer, then every record authenticated and every credential readable under the
// new key only, the hashes (what the acquirer holds) unchanged, and the chain going on
// with new records under the new key.
func TestJournal_Rekey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	old := testKey(t)
	next, err := NewKey(bytes.Repeat([]byte{9}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	j := openTest(t, path, Options{Terminal: "T1", Policy: testPolicy(), Key: old})
	on := mustAppend(t, j, sale("k1", 1250, false))
	off := mustAppend(t, j, sale("k2", 300, true))
	if err := j.Ack(ctx, on.ID); err != nil {
		t.Fatal(err)
	}

	err = j.Rekey(ctx, next)
	var unsent *UnsentError
	if !errors.As(err, &unsent) || !errors.Is(err, ErrUnsent) || unsent.Records != 1 {
		t.Fatalf("Rekey with one record unsent: %v, want an UnsentError of 1", err)
	}
	if got := mustVerify(t, j); !got.MACChecked || got.Records != 2 {
		t.Fatalf("the refused rekey changed the journal: %+v", got)
	}

	if err := j.Ack(ctx, off.ID); err != nil {
		t.Fatal(err)
	}
	if err := j.Rekey(ctx, next); err != nil {
		t.Fatalf("Rekey: %v", err)
	}
	j.Close()

	// Under the old key: nothing matches any more.
	jo := openTest(t, path, Options{Terminal: "T1", Policy: testPolicy(), Key: old})
	if _, err := jo.Verify(ctx); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Verify under the replaced key: %v, want ErrWrongKey", err)
	}
	jo.Close()

	jn := openTest(t, path, Options{Terminal: "T1", Policy: testPolicy(), Key: next})
	mustVerify(t, jn)
	for _, r := range []Record{on, off} {
		got, err := jn.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Hash, r.Hash) {
			t.Errorf("sequence %d: the hash changed", r.Sequence)
		}
		cred, err := jn.Credential(ctx, r.ID)
		if err != nil || cred != sale("k", 1, false).Credential {
			t.Errorf("sequence %d: credential under the new key: %q, %v", r.Sequence, cred, err)
		}
	}
	// Run again (a provisioning that stopped after the journal moved): nothing to do.
	if err := jn.Rekey(ctx, next); err != nil {
		t.Fatalf("Rekey again: %v", err)
	}
	third := mustAppend(t, jn, sale("k3", 500, true))
	if !bytes.Equal(third.PrevHash, off.Hash) {
		t.Fatal("the record after the rekey does not chain onto the last one before it")
	}
	if rep := mustVerify(t, jn); rep.Records != 3 {
		t.Fatalf("Verify after rekey and append: %+v", rep)
	}

	// A retired record's credential swapped for another sealed under the new key is
	// still caught: it no longer decrypts for that record's id.
	if _, err := jn.w.ExecContext(ctx, `UPDATE sales SET credential = (SELECT credential FROM sales WHERE seq = 3) WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	rep, err := jn.Verify(ctx)
	if err != nil || rep.Broken == nil || rep.Broken.Sequence != 1 {
		t.Fatalf("Verify after swapping a credential: %+v, %v; want broken at 1", rep.Broken, err)
	}
}

// TestJournal_RekeyEmpty: a journal without records has nothing under the old key.
func TestJournal_RekeyEmpty(t *testing.T) {
	j := openTest(t, filepath.Join(t.TempDir(), "journal.db"), Options{Terminal: "T1", Policy: testPolicy()})
	next, _ := NewKey(bytes.Repeat([]byte{9}, KeySize))
	if err := j.Rekey(context.Background(), next); err != nil {
		t.Fatalf("Rekey of an empty journal: %v", err)
	}
}
