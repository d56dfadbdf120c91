// Package serial is the serial-port layer under the peripheral drivers: it finds a device by
// path, by /dev/serial/by-id link or by USB VID:PID[:serial], and keeps it open across
// unplug and replug.
//
// It is built on go.bug.st/serial (v1.8.0), whose behaviour shapes this package:
//   - a Read with a timeout returns 0, nil when the time is up, and Port.Read keeps that
//     contract;
//   - an unplugged USB device reads 0 bytes, which the library turns into a PortError with
//     code PortClosed, and writes fail with EIO (a pty whose other side is gone gives EIO on
//     both); this package treats both as "the device went away";
//   - Open turns RTS/CTS flow control off and the library offers no flow control at all
//     (v1.8.0's Mode has no such field), so Write cuts the data in chunks and paces them at
//     the line rate, which keeps a USB adapter (whose baud rate is fiction) from overrunning
//     a printer's receive buffer;
//   - Drain is tcdrain (TCSBRK 1) on Linux;
//   - on Linux the enumerator opens every ttyS* node to probe it, so it is used only when a
//     USB device has to be found, with backoff, never polled.
package serial

import (
	"context"
	"errors"
	"fmt"
	"github.com/posagent/posagent/internal/wait"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	bugserial "go.bug.st/serial"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotFound means the device is not there: no such node or link, or no USB device
	// with the IDs.
	ErrNotFound = errors.New("device not found")
	// ErrDisconnected means the device went away during the operation or before it; the
	// port is reconnecting in the background (see Port.WaitConnected).
	ErrDisconnected = errors.New("device disconnected")
	// ErrClosed means the Port was closed.
	ErrClosed = errors.New("port closed")
)

// Parity is the parity setting of the line.
type Parity byte

const (
	ParityNone Parity = 0
	ParityEven Parity = 'E'
	ParityOdd  Parity = 'O'
)

// Options configure a Port. The zero value is 9600 8N1, blocking reads, writes paced at
// the line rate, the default backoff and no event callback.
type Options struct {
	Baud     int    // bits per second; 0 means 9600
	DataBits int    // 5–8; 0 means 8
	Parity   Parity // ParityNone (default), ParityEven, ParityOdd
	StopBits int    // 1 (default) or 2

	// ReadTimeout is how long Read waits for a byte before it returns 0, nil; 0 or less
	// means it waits until data arrives (or the port is closed).
	ReadTimeout time.Duration

	// ChunkSize is how many bytes one write to the device carries; 0 means 20 ms worth of
	// bytes at the baud rate (at least 16, at most 1024).
	ChunkSize int
	// BytePace is the time each written byte is given on the line before the next chunk
	// goes out; 0 means the time the line takes for one character at the baud rate
	// (start, data, parity and stop bits), negative means no pacing.
	BytePace time.Duration

	// Backoff is the wait before reconnect attempt n (1, 2, …); nil means 25 ms doubling
	// to 2 s, with jitter.
	Backoff func(attempt int) time.Duration
	// Sleep waits for d or until ctx is done (then returning ctx.Err()); nil means a timer.
	// Tests swap it.
	Sleep func(ctx context.Context, d time.Duration) error
	// Enumerate lists the machine's ports, for USB locators; nil means ListPorts.
	Enumerate func() ([]PortInfo, error)

	// WaitForDevice makes Open succeed when the device is not there yet: the Port starts
	// disconnected and connects, with Backoff, when it appears (reads and writes wait or
	// time out as during a replug). Without it, Open fails for an absent device.
	WaitForDevice bool

	// Watch, if positive, is how often a connected port checks that its device node is
	// still there, so that an unplugged device is reported without a read or write (a
	// display written to only when the screen changes). A stat per interval.
	Watch time.Duration

	// OnEvent, if set, is called on connection changes, from the goroutine that saw them;
	// it must return quickly.
	OnEvent func(Event)
	// Logger receives connection changes at Info and failed attempts at Debug; nil means
	// slog.Default().
	Logger *slog.Logger
}

// EventKind is what happened to the connection.
type EventKind int

const (
	Connected    EventKind = iota + 1 // the device is back (Name is its tty now)
	Disconnected                      // the device went away (Err says how)
	RetryFailed                       // a reconnect attempt failed (Attempt, Err)
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case RetryFailed:
		return "retry-failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change of the connection.
type Event struct {
	Kind     EventKind
	Name     string        // the device node concerned (after resolving links)
	Err      error         // for Disconnected and RetryFailed
	Attempt  int           // reconnect attempt number, for Connected and RetryFailed
	Downtime time.Duration // for Connected: time since the device went away
}

// Port is a serial port that reconnects: when the device goes away (a read sees PortClosed
// or EIO, a write fails with EIO) it reports Disconnected, retries with backoff in one
// background goroutine, and carries on when the device is back, under a new tty name if
// the kernel gave it one. One goroutine may Read while another Writes. Close stops
// everything.
type Port struct {
	loc  Locator
	opt  Options
	mode *bugserial.Mode
	log  *slog.Logger

	chunk int
	pace  time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wmu    sync.Mutex // one Write at a time, so chunks of two writes do not interleave

	mu          sync.Mutex
	cur         bugserial.Port // nil while disconnected
	name        string
	gen         uint64        // incremented at every connect
	up          chan struct{} // closed while connected
	downAt      time.Time
	readTimeout time.Duration
	closed      bool
	done        chan struct{} // closed by Close
}

var _ io.ReadWriteCloser = (*Port)(nil)

// Open finds and opens the device. It fails if the device is not there now (the error
// wraps ErrNotFound, or the system's reason) unless Options.WaitForDevice is set; once
// open, the Port reconnects on its own until Close. ctx bounds only the opening.
func Open(ctx context.Context, loc Locator, opt Options) (*Port, error) {
	if opt.Baud == 0 {
		opt.Baud = 9600
	}
	if opt.DataBits == 0 {
		opt.DataBits = 8
	}
	if opt.StopBits == 0 {
		opt.StopBits = 1
	}
	if opt.Baud < 0 || opt.DataBits < 5 || opt.DataBits > 8 || (opt.StopBits != 1 && opt.StopBits != 2) {
		return nil, fmt.Errorf("serial options: baud %d, %d data bits, %d stop bits: %w", opt.Baud, opt.DataBits, opt.StopBits, errBadOptions)
	}
	mode := &bugserial.Mode{BaudRate: opt.Baud, DataBits: opt.DataBits}
	switch opt.Parity {
	case ParityNone:
	case ParityEven:
		mode.Parity = bugserial.EvenParity
	case ParityOdd:
		mode.Parity = bugserial.OddParity
	default:
		return nil, fmt.Errorf("serial options: parity %q: %w", opt.Parity, errBadOptions)
	}
	if opt.StopBits == 2 {
		mode.StopBits = bugserial.TwoStopBits
	}
	if opt.Backoff == nil {
		opt.Backoff = DefaultBackoff
	}
	if opt.Sleep == nil {
		opt.Sleep = wait.Sleep
	}
	if opt.Enumerate == nil {
		opt.Enumerate = ListPorts
	}
	p := &Port{loc: loc, opt: opt, mode: mode, log: opt.Logger, readTimeout: opt.ReadTimeout, done: make(chan struct{})}
	if p.log == nil {
		p.log = slog.Default()
	}
	bits := 1 + opt.DataBits + opt.StopBits
	if opt.Parity != ParityNone {
		bits++
	}
	p.pace = opt.BytePace
	if p.pace == 0 {
		p.pace = time.Duration(bits) * time.Second / time.Duration(opt.Baud)
	}
	p.chunk = opt.ChunkSize
	if p.chunk <= 0 {
		p.chunk = min(max(opt.Baud/bits/50, 16), 1024)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, name, err := p.dial()
	if err != nil && !opt.WaitForDevice {
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err != nil {
		p.up = make(chan struct{})
		p.downAt = time.Now()
		p.wg.Add(1)
		p.emit(Event{Kind: Disconnected, Err: err})
		go p.reconnect()
		p.startWatch()
		return p, nil
	}
	p.cur, p.name, p.gen = c, name, 1
	p.up = make(chan struct{})
	close(p.up)
	p.startWatch()
	return p, nil
}

var errBadOptions = errors.New("invalid serial options")

// DefaultBackoff waits 25 ms before the first reconnect attempt, doubling up to 2 s, each
// wait between half and all of that (jitter, so that several ports do not probe in step).
func DefaultBackoff(attempt int) time.Duration {
	d := 25 * time.Millisecond << min(max(attempt-1, 0), 7)
	d = min(d, 2*time.Second)
	return d/2 + rand.N(d/2+1)
}

// resolve finds the device node the locator names now.
func (p *Port) resolve() (string, error) {
	if !p.loc.IsUSB() {
		name, err := filepath.EvalSymlinks(p.loc.Path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", errNotFound(p.loc, nil)
			}
			return "", fmt.Errorf("%s: %w", p.loc.Path, err)
		}
		return name, nil
	}
	ports, err := p.opt.Enumerate()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", p.loc.describe(), err)
	}
	var found []PortInfo
	for _, pi := range ports {
		if pi.IsUSB && p.loc.Matches(pi.VID, pi.PID, pi.Serial) {
			found = append(found, pi)
		}
	}
	switch len(found) {
	case 0:
		return "", errNotFound(p.loc, nil)
	case 1:
		return found[0].Name, nil
	}
	var serials []string
	for _, f := range found {
		serials = append(serials, fmt.Sprintf("%s (serial %q)", f.Name, f.Serial))
	}
	return "", fmt.Errorf("%s: %d devices match: %s; add the serial number (VID:PID:SERIAL)", p.loc.describe(), len(found), strings.Join(serials, ", "))
}

// dial resolves the locator and opens the device with the port's mode and read timeout.
func (p *Port) dial() (bugserial.Port, string, error) {
	name, err := p.resolve()
	if err != nil {
		return nil, "", err
	}
	c, err := bugserial.Open(name, p.mode)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
			return nil, name, errNotFound(p.loc, err)
		}
		return nil, name, fmt.Errorf("open %s: %w", name, err)
	}
	p.mu.Lock()
	rt := p.readTimeout
	p.mu.Unlock()
	if err := c.SetReadTimeout(libTimeout(rt)); err != nil {
		c.Close()
		return nil, name, fmt.Errorf("open %s: set read timeout: %w", name, err)
	}
	return c, name, nil
}

func libTimeout(d time.Duration) time.Duration {
	if d <= 0 {
		return bugserial.NoTimeout
	}
	return d
}

// gone reports whether err means the device went away.
func gone(err error) bool {
	var pe *bugserial.PortError
	if errors.As(err, &pe) {
		return pe.Code() == bugserial.PortClosed
	}
	for _, e := range []error{syscall.EIO, syscall.ENXIO, syscall.ENODEV, syscall.EBADF, syscall.EPIPE, os.ErrClosed} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (p *Port) emit(ev Event) {
	switch ev.Kind {
	case RetryFailed:
		p.log.Debug("serial: reconnect attempt failed", "port", p.loc.String(), "attempt", ev.Attempt, "err", ev.Err)
	case Disconnected:
		p.log.Info("serial: device disconnected", "port", p.loc.String(), "tty", ev.Name, "err", ev.Err)
	case Connected:
		p.log.Info("serial: device reconnected", "port", p.loc.String(), "tty", ev.Name, "attempt", ev.Attempt, "downtime", ev.Downtime)
	}
	if p.opt.OnEvent != nil {
		p.opt.OnEvent(ev)
	}
}

// snapshot returns the current connection (nil while disconnected) and its generation.
func (p *Port) snapshot() (c bugserial.Port, gen uint64, up chan struct{}, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, 0, nil, ErrClosed
	}
	return p.cur, p.gen, p.up, nil
}

// lost takes connection gen down, once, and starts reconnecting.
func (p *Port) lost(gen uint64, cause error) {
	p.mu.Lock()
	if p.closed || gen != p.gen || p.cur == nil {
		p.mu.Unlock()
		return
	}
	c, name := p.cur, p.name
	p.cur = nil
	p.up = make(chan struct{})
	p.downAt = time.Now()
	p.wg.Add(1)
	p.mu.Unlock()
	c.Close()
	p.emit(Event{Kind: Disconnected, Name: name, Err: cause})
	go p.reconnect()
}

func (p *Port) reconnect() {
	defer p.wg.Done()
	for attempt := 1; ; attempt++ {
		if p.opt.Sleep(p.ctx, p.opt.Backoff(attempt)) != nil {
			return
		}
		c, name, err := p.dial()
		if err != nil {
			p.emit(Event{Kind: RetryFailed, Attempt: attempt, Err: err})
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.cur, p.name = c, name
		p.gen++
		down := time.Since(p.downAt)
		close(p.up)
		p.mu.Unlock()
		p.emit(Event{Kind: Connected, Name: name, Attempt: attempt, Downtime: down})
		return
	}
}

// Read reads what the device sent. With a read timeout it returns 0, nil when nothing came
// in time, also while the device is away; without one it waits, across a reconnect, until
// data arrives. It returns ErrClosed after Close.
func (p *Port) Read(b []byte) (int, error) {
	var deadline <-chan time.Time
	for {
		c, gen, up, err := p.snapshot()
		if err != nil {
			return 0, err
		}
		if c == nil {
			if deadline == nil {
				if rt := p.ReadTimeout(); rt > 0 {
					t := time.NewTimer(rt)
					defer t.Stop()
					deadline = t.C
				}
			}
			select {
			case <-up:
				continue
			case <-p.done:
				return 0, ErrClosed
			case <-deadline:
				return 0, nil
			}
		}
		n, err := c.Read(b)
		if err == nil {
			return n, nil
		}
		if p.isClosed() {
			return 0, ErrClosed
		}
		p.mu.Lock()
		stale := gen != p.gen
		name := p.name
		p.mu.Unlock()
		if gone(err) || stale {
			p.lost(gen, err)
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, fmt.Errorf("read %s: %w", name, err)
	}
}

// Write sends b in chunks, pacing them at the line rate, and returns when the last chunk
// has had its time on the line. If the device goes away (or is away) it returns how much
// was written and an error wrapping ErrDisconnected: the port reconnects in the background,
// but it does not resend on its own, because a device that was unplugged has usually lost
// what it had (a printer its half-received job): the caller decides, after WaitConnected.
func (p *Port) Write(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	n := 0
	for n < len(b) {
		c, gen, _, err := p.snapshot()
		if err != nil {
			return n, err
		}
		if c == nil {
			return n, fmt.Errorf("write %s: %w", p.loc.describe(), ErrDisconnected)
		}
		k := min(p.chunk, len(b)-n)
		w, err := c.Write(b[n : n+k])
		n += w
		if err != nil {
			if p.isClosed() {
				return n, ErrClosed
			}
			if gone(err) {
				p.lost(gen, err)
				return n, fmt.Errorf("write %s: %w: %v", p.loc.describe(), ErrDisconnected, err)
			}
			return n, fmt.Errorf("write %s: %w", p.loc.describe(), err)
		}
		if p.pace > 0 && w > 0 {
			if p.opt.Sleep(p.ctx, time.Duration(w)*p.pace) != nil {
				return n, ErrClosed
			}
		}
	}
	return n, nil
}

// Drain waits until the system has sent everything written (tcdrain).
func (p *Port) Drain() error {
	c, gen, _, err := p.snapshot()
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("drain %s: %w", p.loc.describe(), ErrDisconnected)
	}
	if err := c.Drain(); err != nil {
		if gone(err) {
			p.lost(gen, err)
			return fmt.Errorf("drain %s: %w: %v", p.loc.describe(), ErrDisconnected, err)
		}
		return fmt.Errorf("drain %s: %w", p.loc.describe(), err)
	}
	return nil
}

// SetReadTimeout sets how long Read waits for data; 0 or less means no limit. It applies
// to the current connection and to every later one.
func (p *Port) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.readTimeout = d
	if p.cur != nil {
		return p.cur.SetReadTimeout(libTimeout(d))
	}
	return nil
}

// ReadTimeout returns the read timeout (0: none).
func (p *Port) ReadTimeout() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.readTimeout, 0)
}

// WaitConnected returns nil at once when the device is connected, else when it is back;
// ctx.Err() if ctx ends first, ErrClosed if the port is closed.
func (p *Port) WaitConnected(ctx context.Context) error {
	_, _, up, err := p.snapshot()
	if err != nil {
		return err
	}
	select {
	case <-up:
		return nil
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the device is connected now.
func (p *Port) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil
}

// Name returns the device node of the current (or last) connection, e.g. /dev/ttyUSB1.
func (p *Port) Name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// Locator returns what the port was opened with.
func (p *Port) Locator() Locator { return p.loc }

// Close closes the device and stops reconnecting; blocked Reads return ErrClosed. It
// waits for the port's goroutine to end. Closing twice is harmless.
func (p *Port) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	c := p.cur
	p.cur = nil
	p.mu.Unlock()
	p.cancel()
	var err error
	if c != nil {
		err = c.Close()
	}
	p.wg.Wait()
	return err
}

func (p *Port) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}
