package escpos

import (
	"context"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/wait"
	"io"
	"sync"
	"time"

	"github.com/posagent/posagent"
)

// Port is what the driver needs from a serial port: bytes both ways and a read timeout.
// go.bug.st/serial's Port and drivers/serial's Port satisfy it. SetReadTimeout(d), d > 0,
// makes a Read that finds no data within d return 0, nil (the driver never sets 0, whose
// meaning differs: "poll" for go.bug.st/serial, "block" for drivers/serial).
type Port interface {
	io.ReadWriter
	SetReadTimeout(time.Duration) error
}

// Options tunes a Printer. The zero value is 9600 baud with the defaults below.
type Options struct {
	// Baud is the line speed, for pacing: receipt printers have no flow control that
	// serial adapters honour reliably, so the driver never writes faster than the line
	// carries (10 bits per byte) plus one chunk. 0 means 9600.
	Baud int
	// ChunkSize is the bytes per write; 0 means what the line carries in 50 ms (48 bytes at
	// 9600 baud, 576 at 115200), at least 16.
	ChunkSize int
	// StatusTimeout bounds the wait for each DLE EOT answer; 0 means 1.5 s. No answer
	// means the printer is offline (ErrNoAnswer). A printer answers in milliseconds; the
	// margin is for a busy terminal (a slow CPU, a USB-serial adapter's latency timer), where
	// a shorter wait reported working printers offline.
	StatusTimeout time.Duration
	// Settle is the wait after the last byte is on the wire before the status is read
	// again, for the printer to print what it buffered; 0 means 100 ms.
	Settle time.Duration
	// Encode tunes how receipts are encoded.
	Encode EncodeOptions
}

func (o Options) withDefaults() Options {
	if o.Baud <= 0 {
		o.Baud = 9600
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = max(o.Baud/10/20, 16)
	}
	if o.StatusTimeout <= 0 {
		o.StatusTimeout = 1500 * time.Millisecond
	}
	if o.Settle <= 0 {
		o.Settle = 100 * time.Millisecond
	}
	return o
}

// Printer drives an ESC/POS receipt printer on a port. Its methods are safe for
// concurrent use; jobs are sent one at a time.
type Printer struct {
	port    Port
	profile *Profile
	opts    Options

	mu sync.Mutex
}

// New returns a driver for the printer described by profile on port.
func New(port Port, profile *Profile, opts Options) *Printer {
	return &Printer{port: port, profile: profile, opts: opts.withDefaults()}
}

// Profile returns the printer's profile.
func (p *Printer) Profile() *Profile { return p.profile }

// Result describes a job the printer accepted.
type Result struct {
	Bytes    int           // bytes sent
	Elapsed  time.Duration // from the first status query to the last answer
	Before   Status        // status before the job (zero when the profile has no status)
	After    Status        // status after the job
	Warnings []string      // e.g. "paper near end", "status not checked"
}

// Status asks the printer for its status (DLE EOT 1, 2, 4). A printer that does not
// answer each query within the status timeout gives ErrNoAnswer; a port error is returned
// as it is.
func (p *Printer) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status(ctx)
}

func (p *Printer) status(ctx context.Context) (Status, error) {
	if err := p.drain(); err != nil {
		return Status{}, err
	}
	var ans [3]byte
	for i, n := range []byte{1, 2, 4} {
		b, err := p.query(ctx, n)
		if err != nil {
			return Status{}, err
		}
		ans[i] = b
	}
	return DecodeStatus(ans[0], ans[1], ans[2])
}

// drain discards whatever the printer sent unasked (automatic status, a late answer).
func (p *Printer) drain() error {
	if err := p.port.SetReadTimeout(time.Millisecond); err != nil {
		return fmt.Errorf("printer port: %w", err)
	}
	var buf [64]byte
	for i := 0; i < 64; i++ {
		n, err := p.port.Read(buf[:])
		if err != nil {
			return fmt.Errorf("read printer: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// query sends DLE EOT n and returns the first status byte that comes back in time,
// skipping bytes without the fixed status bits. Answers may come in any number of reads.
func (p *Printer) query(ctx context.Context, n byte) (byte, error) {
	if err := p.writeAll(StatusQuery(n)); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(p.opts.StatusTimeout)
	var buf [16]byte
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("%w to DLE EOT %d within %v", ErrNoAnswer, n, p.opts.StatusTimeout)
		}
		if err := p.port.SetReadTimeout(min(left, 100*time.Millisecond)); err != nil {
			return 0, fmt.Errorf("printer port: %w", err)
		}
		k, err := p.port.Read(buf[:])
		for _, b := range buf[:k] {
			if IsStatusByte(b) {
				return b, nil
			}
		}
		if err != nil {
			return 0, fmt.Errorf("read printer: %w", err)
		}
	}
}

// Print encodes the receipt for the printer's profile and prints it as one job (see
// PrintJob). An invalid receipt is refused before anything is sent.
func (p *Printer) Print(ctx context.Context, rc *posagent.Receipt) (*Result, error) {
	if err := rc.Validate(); err != nil {
		return nil, err
	}
	job, err := EncodeReceipt(rc, p.profile, p.opts.Encode)
	if err != nil {
		return nil, err
	}
	return p.PrintJob(ctx, job)
}

// PrintJob sends one encoded job. When the profile has status support it reads the
// status first and refuses the job, sending nothing, if the printer does not answer or
// cannot print (paper end, cover open, offline, error); paper near-end is a warning. It
// then writes the job in paced chunks and reads the status again after the printer had
// time to print: a printer that ran out of paper (or went offline) during the job fails
// it with that reason. Errors are *JobError wrapping ErrNoAnswer, ErrPaperEnd,
// ErrCoverOpen, ErrPrinterError, ErrOffline, the port's error or ctx's.
//
// A job that fails after it was sent may be partly printed: the driver cannot take bytes
// back from the printer's buffer. What it guarantees is that it never starts a job on a
// printer that reports it cannot finish one, and that it reports every failure.
func (p *Printer) PrintJob(ctx context.Context, job []byte) (*Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	res := &Result{}
	if p.profile.Status {
		st, err := p.status(ctx)
		if err != nil {
			return nil, &JobError{Stage: "before", Err: err}
		}
		res.Before = st
		if err := st.Err(); err != nil {
			return nil, &JobError{Stage: "before", Status: st, Err: err}
		}
		if st.PaperNearEnd {
			res.Warnings = append(res.Warnings, "paper near end")
		}
	} else {
		res.Warnings = append(res.Warnings, "status not checked: the profile has no status support")
	}
	sent, err := p.send(ctx, job)
	res.Bytes = sent
	if err != nil {
		return nil, &JobError{Stage: "send", Sent: sent, Status: res.Before, Err: err}
	}
	if p.profile.Status {
		if err := wait.Sleep(ctx, p.opts.Settle); err != nil {
			return nil, &JobError{Stage: "after", Sent: sent, Err: err}
		}
		st, err := p.status(ctx)
		if err != nil {
			return nil, &JobError{Stage: "after", Sent: sent, Err: err}
		}
		res.After = st
		if err := st.Err(); err != nil {
			return nil, &JobError{Stage: "after", Sent: sent, Status: st, Err: err}
		}
		if st.PaperNearEnd && !res.Before.PaperNearEnd {
			res.Warnings = append(res.Warnings, "paper near end")
		}
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

// OpenDrawer kicks the cash drawer connected to the printer. It fails with
// posagent.ErrUnsupported when the profile has no drawer port.
func (p *Printer) OpenDrawer(ctx context.Context) error {
	if !p.profile.Drawer {
		return &posagent.Error{Kind: posagent.ErrUnsupported, Msg: fmt.Sprintf("printer profile %s has no cash drawer port", p.profile.Name)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.send(ctx, Drawer())
	return err
}

// send writes data in chunks, never more than one chunk ahead of the line rate, and
// returns when the last byte is on the wire (by the clock).
func (p *Printer) send(ctx context.Context, data []byte) (int, error) {
	perByte := time.Second * 10 / time.Duration(p.opts.Baud)
	start := time.Now()
	sent := 0
	for sent < len(data) {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		chunk := data[sent:min(sent+p.opts.ChunkSize, len(data))]
		if err := p.writeAll(chunk); err != nil {
			return sent, err
		}
		sent += len(chunk)
		// The line needs perByte·sent to carry what was written; stay within a chunk of it.
		ahead := time.Duration(sent-p.opts.ChunkSize)*perByte - time.Since(start)
		if ahead > 0 {
			if err := wait.Sleep(ctx, ahead); err != nil {
				return sent, err
			}
		}
	}
	if rest := time.Duration(sent)*perByte - time.Since(start); rest > 0 {
		if err := wait.Sleep(ctx, rest); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// writeAll writes all of b: go.bug.st/serial's Write is one write(2) and may be short.
func (p *Printer) writeAll(b []byte) error {
	for len(b) > 0 {
		n, err := p.port.Write(b)
		if err != nil {
			return fmt.Errorf("write printer: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("write printer: %w", io.ErrShortWrite)
		}
		b = b[n:]
	}
	return nil
}

// Reason returns a short machine-readable reason for a print error: "paper-end",
// "cover-open", "offline" (also for no answer), "printer-error", or "" for others.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrPaperEnd):
		return "paper-end"
	case errors.Is(err, ErrCoverOpen):
		return "cover-open"
	case errors.Is(err, ErrNoAnswer), errors.Is(err, ErrOffline):
		return "offline"
	case errors.Is(err, ErrPrinterError):
		return "printer-error"
	}
	return ""
}
