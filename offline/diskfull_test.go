package offline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fill appends offline-sized sales until the journal refuses one, and returns how many
// it stored and the refusal.
func fill(t *testing.T, j *Journal, prefix string) (int, error) {
	t.Helper()
	for i := 0; ; i++ {
		s := sale(fmt.Sprintf("%s-%d", prefix, i), 100, false)
		s.Reference = strings.Repeat("r", 100)
		if _, _, err := j.Append(context.Background(), s); err != nil {
			return i, err
		}
		if i > 200000 {
			t.Fatal("the journal never filled up")
		}
	}
}

// checkIntact verifies that a full journal still holds everything it acknowledged.
func checkIntact(t *testing.T, j *Journal, want int) {
	t.Helper()
	rep := mustVerify(t, j)
	if rep.Records != want || rep.LastSeq != uint64(want) {
		t.Errorf("after disk full: %d records, last sequence %d; want %d", rep.Records, rep.LastSeq, want)
	}
	if err := j.IntegrityCheck(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestJournal_DiskFullMaxSize fills a real journal file up to its size cap
// (PRAGMA max_page_count, which SQLite enforces like a full disk: SQLITE_FULL).
func TestJournal_DiskFullMaxSize(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j := openTest(t, path, Options{Policy: testPolicy(), MaxSize: 256 << 10})
	n, err := fill(t, j, "a")
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d sales: %v, want ErrDiskFull", n, err)
	}
	if !strings.Contains(err.Error(), "full") || !strings.Contains(err.Error(), "not stored") {
		t.Errorf("message %q is not for the counter", err)
	}
	checkIntact(t, j, n)
	// Reads and state changes that need no new pages still work.
	if _, err := j.List(ctx, Filter{Limit: 3}); err != nil {
		t.Error(err)
	}
	j.Close()
	// Space returns (a bigger cap): the same file takes sales again, with no gap.
	j = openTest(t, path, Options{Policy: testPolicy(), MaxSize: 1 << 20})
	r := mustAppend(t, j, sale("b", 100, true))
	if r.Sequence != uint64(n+1) {
		t.Errorf("sequence after space returned: %d, want %d", r.Sequence, n+1)
	}
	checkIntact(t, j, n+1)
}

// mountTmpfs mounts a small tmpfs for the test, or skips when this machine does not allow
// mounting (not root, no CAP_SYS_ADMIN, or a container without mount rights).
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s); TestJournal_DiskFullMaxSize covers disk full with max_page_count", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func remount(t *testing.T, dir, opt string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+opt, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s: %v: %s", opt, err, out)
	}
}

// TestJournal_DiskFullTmpfs fills a real file system: a 1 MiB tmpfs, where the kernel
// says ENOSPC. Space then returns (a ballast file is removed) and the journal goes on.
func TestJournal_DiskFullTmpfs(t *testing.T) {
	dir := mountTmpfs(t, "1m")
	ballast := filepath.Join(dir, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 128<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "j.db")
	j := openTest(t, path, Options{Policy: testPolicy()})
	n, err := fill(t, j, "a")
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("after %d sales: %v, want ErrDiskFull", n, err)
	}
	t.Logf("tmpfs full after %d sales: %v", n, err)
	// Further attempts keep failing cleanly, without a gap or a half-written record.
	for i := range 3 {
		if _, _, err := j.Append(context.Background(), sale(fmt.Sprint("again", i), 100, false)); !errors.Is(err, ErrDiskFull) {
			t.Fatalf("retry on a full disk: %v", err)
		}
	}
	checkIntact(t, j, n)
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	r := mustAppend(t, j, sale("b", 100, true))
	if r.Sequence != uint64(n+1) {
		t.Errorf("sequence after space returned: %d, want %d", r.Sequence, n+1)
	}
	checkIntact(t, j, n+1)
	j.Close()

	// And a fresh open on the full-then-freed file system is clean.
	j = openTest(t, path, Options{Policy: testPolicy()})
	checkIntact(t, j, n+1)
}

// TestJournal_ReadOnlyFS puts the journal on a file system that is remounted read-only,
// as the kernel does to a failing flash. (Linux refuses to remount read-only under a file
// open for writing, so the journal is closed first and reopened, as the agent would after
// its writes started failing.)
func TestJournal_ReadOnlyFS(t *testing.T) {
	ctx := context.Background()
	dir := mountTmpfs(t, "4m")
	path := filepath.Join(dir, "j.db")
	j := openTest(t, path, Options{Policy: testPolicy()})
	mustAppend(t, j, sale("a", 100, true))
	j.Close()
	remount(t, dir, "ro")
	j, err := Open(path, Options{Key: testKey(t), Policy: testPolicy()})
	if err == nil {
		_, _, err = j.Append(ctx, sale("b", 100, true))
		if r, rerr := j.ByIdempotencyKey(ctx, "a"); rerr != nil || r.Sequence != 1 {
			t.Errorf("read on a read-only file system: %v", rerr)
		}
		j.Close()
	}
	if !errors.Is(err, ErrReadOnly) {
		t.Fatalf("journal on a read-only file system: %v, want ErrReadOnly", err)
	}
	if !strings.Contains(err.Error(), "read-only") {
		t.Errorf("message %q", err)
	}
	t.Logf("read-only: %v", err)
	remount(t, dir, "rw")
	j = openTest(t, path, Options{Policy: testPolicy()})
	r := mustAppend(t, j, sale("c", 100, true))
	if r.Sequence != 2 {
		t.Errorf("sequence %d after the file system came back, want 2", r.Sequence)
	}
	checkIntact(t, j, 2)
}
