package offline

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

// The crash test re-executes the test binary as a child that journals sales and prints
// each acknowledged one; the parent kills it with SIGKILL at a random moment and checks
// the journal. TestMain turns the binary into that child when the variable is set.
const crashChildEnv = "POSAGENT_OFFLINE_CRASH_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashChild(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild appends sales from two goroutines (offline and online, with retries of keys
// already used, as a POS app retries) and moves some through their states, printing
//
//	ack SEQ KEY
//
// only after Append returned: from then on the sale must survive anything.
func crashChild(path string) {
	ctx := context.Background()
	p := testPolicy()
	p.MaxCount = 1 << 30
	p.Limits["CNY"] = Limit{PerTransaction: 1 << 40, Outstanding: 1 << 60}
	key, _ := NewKey([]byte(strings.Repeat("k", KeySize)))
	j, err := Open(path, Options{Key: key, Terminal: "CRASH", Policy: p})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	run := os.Getenv("POSAGENT_OFFLINE_CRASH_RUN")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			var last string
			for i := 0; ; i++ {
				k := fmt.Sprintf("%s-%d-%d", run, g, i)
				if last != "" && i%5 == 0 {
					k, i = last, i-1 // a retry of the previous request
				}
				r, _, err := j.Append(ctx, sale(k, int64(100+i), g == 0))
				if err != nil {
					fmt.Println("error", err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Printf("ack %d %s\n", r.Sequence, k)
				mu.Unlock()
				last = k
				if g == 1 && i%3 == 0 {
					j.Transition(ctx, r.ID, posagent.StateApproved, "")
				}
				if g == 0 && i%4 == 0 {
					j.MarkUploading(ctx, r.ID)
					j.Ack(ctx, r.ID)
				}
			}
		})
	}
	wg.Wait()
}

// crashIterations is 200 for `make test`; `make soak` sets POSAGENT_CRASH_ITERATIONS.
func crashIterations(t *testing.T) int {
	if s := os.Getenv("POSAGENT_CRASH_ITERATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("POSAGENT_CRASH_ITERATIONS: %v", err)
		}
		return n
	}
	if testing.Short() {
		return 20
	}
	return 200
}

// childCommand runs the test binary again as the crash test's child. Under `make test-arm`
// the tests run in qemu-user, whose command POSAGENT_TEST_EXEC names
// ("qemu-aarch64-static -L /usr/aarch64-linux-gnu"): the child must run in it too, since
// the machine may have no binfmt_misc handler for foreign binaries. qemu-user runs the guest
// in its own process, so killing that process is still a SIGKILL of the child.
func childCommand(exe string, args ...string) *exec.Cmd {
	if wrapper := strings.Fields(os.Getenv("POSAGENT_TEST_EXEC")); len(wrapper) > 0 {
		return exec.Command(wrapper[0], append(append(wrapper[1:], exe), args...)...)
	}
	return exec.Command(exe, args...)
}

func TestJournal_CrashKill9(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	acked := map[string]uint64{} // every sale any child acknowledged, by key
	iterations := crashIterations(t)
	killedBeforeReady := 0
	start := time.Now()
	for it := range iterations {
		cmd := childCommand(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path, fmt.Sprintf("POSAGENT_OFFLINE_CRASH_RUN=r%d", it))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a random moment: mostly while sales are being written, sometimes while
		// the child is still opening (recovery, migrations, quick_check).
		delay := time.Duration(rng.IntN(60)) * time.Millisecond
		lines := make(chan string, 1024)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var timer <-chan time.Time
		if rng.IntN(10) == 0 {
			timer = time.After(delay) // from process start
		}
		ready := false
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				switch {
				case line == "ready":
					ready = true
					if timer == nil {
						timer = time.After(delay)
					}
				case strings.HasPrefix(line, "ack "):
					var seq uint64
					var key string
					if _, err := fmt.Sscanf(line, "ack %d %s", &seq, &key); err != nil {
						t.Fatalf("child said %q", line)
					}
					if prev, ok := acked[key]; ok && prev != seq {
						t.Fatalf("iteration %d: key %s acknowledged as sequence %d and %d", it, key, prev, seq)
					}
					acked[key] = seq
				default:
					t.Fatalf("iteration %d: child said %q", it, line)
				}
			case <-timer:
				cmd.Process.Signal(syscall.SIGKILL)
				timer = nil
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("iteration %d: child hung", it)
			}
		}
		err = cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("iteration %d: child ended with %v, not killed", it, err)
		}
		if !ready {
			killedBeforeReady++
		}
		checkAfterCrash(t, path, acked, it, it%20 == 19 || it == iterations-1)
	}
	t.Logf("%d kills (%d before the journal was open), %d acknowledged sales, all present once, in %v",
		iterations, killedBeforeReady, len(acked), time.Since(start).Round(time.Millisecond))
}

// checkAfterCrash reopens the journal (quick_check runs in Open) and checks that the chain
// verifies and every acknowledged sale is there once, under its sequence; deep also
// re-checks each key through Append as a retry and runs the full integrity check.
func checkAfterCrash(t *testing.T, path string, acked map[string]uint64, it int, deep bool) {
	t.Helper()
	ctx := context.Background()
	key, _ := NewKey([]byte(strings.Repeat("k", KeySize)))
	j, err := Open(path, Options{Key: key, Terminal: "CRASH"})
	if err != nil {
		t.Fatalf("iteration %d: reopen: %v", it, err)
	}
	defer j.Close()
	rep, err := j.Verify(ctx)
	if err != nil || rep.Broken != nil {
		t.Fatalf("iteration %d: verify: %v %v", it, err, rep.Broken)
	}
	seqs := map[uint64]string{}
	if err := j.Each(ctx, Filter{}, func(r Record) error {
		if other, dup := seqs[r.Sequence]; dup {
			return fmt.Errorf("sequence %d twice (%s, %s)", r.Sequence, other, r.IdempotencyKey)
		}
		seqs[r.Sequence] = r.IdempotencyKey
		return nil
	}); err != nil {
		t.Fatalf("iteration %d: %v", it, err)
	}
	for k, seq := range acked {
		if seqs[seq] != k {
			t.Fatalf("iteration %d: acknowledged sale %s (sequence %d) is missing; found %q there", it, k, seq, seqs[seq])
		}
	}
	if uint64(rep.Records) != rep.LastSeq || len(seqs) != rep.Records {
		t.Fatalf("iteration %d: %d records for sequences 1..%d", it, len(seqs), rep.LastSeq)
	}
	if !deep {
		return
	}
	if err := j.IntegrityCheck(ctx); err != nil {
		t.Fatalf("iteration %d: %v", it, err)
	}
	n := 0
	for k, seq := range acked { // a POS app retrying after the crash gets the original
		var run string
		var g, i int
		if _, err := fmt.Sscanf(strings.ReplaceAll(k, "-", " "), "%s %d %d", &run, &g, &i); err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		r, created, err := j.Append(ctx, sale(k, int64(100+i), g == 0))
		if err != nil || created || r.Sequence != seq {
			t.Fatalf("iteration %d: retry of %s: created %v, sequence %d (want %d), %v", it, k, created, r.Sequence, seq, err)
		}
		if n++; n == 20 {
			break
		}
	}
}
