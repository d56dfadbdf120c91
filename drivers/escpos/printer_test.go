package escpos

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"

	"github.com/posagent/posagent/internal/possim"
)

// Both serial layers satisfy Port.
var _ Port = serial.Port(nil)

// fast is quick at 115200 baud; the status timeout leaves room for the simulator, which
// parses the whole job before it answers the DLE EOT after it, under -race on a busy machine.
var fast = Options{Baud: 115200, StatusTimeout: 2 * time.Second}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPrinter_Print(t *testing.T) {
	for _, name := range []string{"generic-80", "generic-58", "epson-tm-t88"} {
		t.Run(name, func(t *testing.T) {
			prof := mustProfile(t, name)
			sim, port := simPair(t, prof.WidthDots)
			ctx := testCtx(t)
			rc := sampleReceipt(t)
			res, err := New(port, prof, fast).Print(ctx, rc)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Warnings) != 0 || res.Before.Err() != nil || res.After.Err() != nil {
				t.Errorf("result %+v", res)
			}
			job, err := sim.WaitJob(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if job.Truncated || len(job.Unknown) > 0 || job.Overflow > 0 {
				t.Errorf("job truncated %v, unknown %q, overflow %d", job.Truncated, job.Unknown, job.Overflow)
			}
			if len(job.QR) != 1 || job.QR[0] != rc.QR {
				t.Errorf("QR printed %q, want %q", job.QR, rc.QR)
			}
			if want := map[bool]int{true: 0, false: 1}[prof.Cutter == "none"]; job.Cuts != want {
				t.Errorf("%d cuts, want %d", job.Cuts, want)
			}
			for _, want := range []string{"Corner Shop", "65.90", "WeChat Pay"} {
				if !strings.Contains(job.Text, want) {
					t.Errorf("printed text lacks %q:\n%s", want, job.Text)
				}
			}
			if job.Bold == 0 || job.Tall != 1 {
				t.Errorf("%d bold lines and %d tall, want some and 1 (the shop name)", job.Bold, job.Tall)
			}
		})
	}
}

func TestPrinter_NearEndIsAWarning(t *testing.T) {
	prof := mustProfile(t, "generic-80")
	sim, port := simPair(t, prof.WidthDots)
	sim.PaperNearEnd(true)
	ctx := testCtx(t)
	res, err := New(port, prof, fast).Print(ctx, sampleReceipt(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || res.Warnings[0] != "paper near end" {
		t.Errorf("warnings %q, want paper near end", res.Warnings)
	}
	if _, err := sim.WaitJob(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

func TestPrinter_RefusedBefore(t *testing.T) {
	tests := []struct {
		name   string
		set    func(*possim.Printer)
		want   error
		reason string
	}{
		{"paper out", func(s *possim.Printer) { s.PaperOut(true) }, ErrPaperEnd, "paper-end"},
		{"cover open", func(s *possim.Printer) { s.CoverOpen(true) }, ErrCoverOpen, "cover-open"},
		{"offline", func(s *possim.Printer) { s.Offline(true) }, ErrOffline, "offline"},
		{"silent", func(s *possim.Printer) { s.Silent(true) }, ErrNoAnswer, "offline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prof := mustProfile(t, "generic-80")
			sim, port := simPair(t, prof.WidthDots)
			tt.set(sim)
			_, err := New(port, prof, fast).Print(testCtx(t), sampleReceipt(t))
			var je *JobError
			if !errors.As(err, &je) || !errors.Is(err, tt.want) || je.Stage != "before" || je.Sent != 0 {
				t.Fatalf("err = %v (%+v), want a JobError before sending wrapping %v", err, je, tt.want)
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
			time.Sleep(3 * sim.IdleEnd)
			if jobs := sim.Jobs(); len(jobs) != 0 {
				t.Errorf("the printer printed %d jobs: %s", len(jobs), jobs[0].Text)
			}
		})
	}
}

func TestPrinter_PaperOutMidJob(t *testing.T) {
	prof := mustProfile(t, "generic-58")
	sim, port := simPair(t, prof.WidthDots)
	sim.RunOutAfter(8)
	ctx := testCtx(t)
	_, err := New(port, prof, fast).Print(ctx, sampleReceipt(t))
	var je *JobError
	if !errors.As(err, &je) || !errors.Is(err, ErrPaperEnd) || je.Stage != "after" || je.Sent == 0 {
		t.Fatalf("err = %v, want a JobError after the job wrapping ErrPaperEnd", err)
	}
	job, err := sim.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !job.Truncated || len(job.QR) != 0 {
		t.Errorf("job truncated %v with QR %q; want truncated before the QR", job.Truncated, job.QR)
	}
	// The next job is refused: the paper is still out.
	if _, err := New(port, prof, fast).Print(ctx, sampleReceipt(t)); !errors.Is(err, ErrPaperEnd) {
		t.Errorf("second job: %v, want ErrPaperEnd", err)
	}
	sim.PaperOut(false)
	if _, err := New(port, prof, fast).Print(ctx, sampleReceipt(t)); err != nil {
		t.Errorf("after new paper: %v", err)
	}
}

// TestPrinter_NeverAnswers: a device that takes every byte and never answers.
func TestPrinter_NeverAnswers(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptmx.Close()
	go io.Copy(io.Discard, ptmx) //nolint:errcheck
	port := openSerial(t, tty)
	defer port.Close()
	prof := mustProfile(t, "generic-80")
	start := time.Now()
	_, err = New(port, prof, Options{Baud: 115200, StatusTimeout: 200 * time.Millisecond}).Print(testCtx(t), sampleReceipt(t))
	if !errors.Is(err, ErrNoAnswer) || Reason(err) != "offline" {
		t.Fatalf("err = %v, want ErrNoAnswer", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("gave up after %v", el)
	}
}

// TestPrinter_PartialReads: answers come late, one byte per read, after line noise.
func TestPrinter_PartialReads(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	defer ptmx.Close()
	var mu sync.Mutex
	var got bytes.Buffer
	go func() {
		buf := make([]byte, 1024)
		var pending []byte
		for {
			n, err := ptmx.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got.Write(buf[:n])
			mu.Unlock()
			pending = append(pending, buf[:n]...)
			for {
				i := bytes.Index(pending, []byte{DLE, EOT})
				if i < 0 || i+2 >= len(pending) {
					break
				}
				n := pending[i+2]
				pending = pending[i+3:]
				ptmx.Write([]byte{0xFF, 0x00}) //nolint:errcheck // noise: not status bytes
				time.Sleep(30 * time.Millisecond)
				ans := byte(0x12)
				if n == 4 {
					ans = 0x1E // near end
				}
				ptmx.Write([]byte{ans}) //nolint:errcheck
			}
			if len(pending) > 2 {
				pending = pending[len(pending)-2:]
			}
		}
	}()
	port := openSerial(t, tty)
	defer port.Close()
	p := New(oneByteReads{port}, mustProfile(t, "generic-80"), fast)
	st, err := p.Status(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !st.PaperNearEnd || st.Err() != nil {
		t.Errorf("status %s, want paper-near-end only", st)
	}
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if want := "\x10\x04\x01\x10\x04\x02\x10\x04\x04"; got.String() != want {
		t.Errorf("sent %q, want %q", got.String(), want)
	}
}

type oneByteReads struct{ Port }

func (o oneByteReads) Read(b []byte) (int, error) { return o.Port.Read(b[:min(len(b), 1)]) }

// TestPrinter_Unplugged: the printer goes away; the job fails and says so.
func TestPrinter_Unplugged(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skip(err)
	}
	sim := possim.NewPrinter("")
	served := make(chan error, 1)
	go func() { served <- sim.Serve(context.Background(), ptmx) }()
	port := openSerial(t, tty)
	defer port.Close()
	prof := mustProfile(t, "generic-80")
	p := New(port, prof, fast)
	ctx := testCtx(t)
	if _, err := p.Status(ctx); err != nil {
		t.Fatal(err)
	}
	sim.Unplug()
	if err := <-served; !errors.Is(err, possim.ErrUnplugged) {
		t.Fatalf("Serve returned %v", err)
	}
	ptmx.Close()
	tty.Close()
	_, err = p.Print(ctx, sampleReceipt(t))
	var je *JobError
	if !errors.As(err, &je) || je.Stage != "before" {
		t.Fatalf("err = %v, want a JobError before sending", err)
	}
	t.Logf("unplugged: %v", err)
}

// TestPrinter_Drawer sends the drawer kick and the simulator sees it.
func TestPrinter_Drawer(t *testing.T) {
	prof := mustProfile(t, "generic-80")
	sim, port := simPair(t, prof.WidthDots)
	ctx := testCtx(t)
	if err := New(port, prof, fast).OpenDrawer(ctx); err != nil {
		t.Fatal(err)
	}
	job, err := sim.WaitJob(ctx, 1)
	if err != nil || job.Drawer != 1 {
		t.Fatalf("job %+v, %v; want one drawer pulse", job, err)
	}
	if err := New(port, mustProfile(t, "generic-58"), fast).OpenDrawer(ctx); err == nil {
		t.Error("drawer kicked on a profile without a drawer port")
	}
}
