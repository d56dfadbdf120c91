// Package connport is the reconnecting port under the printer transports that are not
// serial lines (drivers/netport for TCP, drivers/usblp for the USB printer class): a stream
// that can be dialled again, with deadlines for reads and writes, kept open across a
// printer that goes away and comes back.
//
// It keeps the contract of drivers/serial.Port, so that drivers/escpos and the agent treat
// every transport alike: a Read with a read timeout returns 0, nil when nothing came in
// time; a write to a device that is away fails with serial.ErrDisconnected; connection
// changes are serial.Events (Connected, Disconnected, RetryFailed); Close makes every call
// return serial.ErrClosed. What it adds is a write timeout: a peer that takes the
// connection but stops reading (a network printer whose buffer is full and that never
// drains it) makes Write fail with ErrStalled once nothing could be written for that long,
// instead of blocking for ever. The stalled connection is dropped and dialled again.
package connport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/internal/wait"
)

// ErrStalled means the peer accepted the connection but took no byte for the write
// timeout: it is not reading. Errors wrapping it also wrap serial.ErrDisconnected (the
// port reconnects).
var ErrStalled = errors.New("printer is not reading (it accepted the connection but took no data)")

// Conn is one connection: net.Conn and a pollable *os.File both are.
type Conn interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

// DialFunc opens one connection and returns it with a name for it (the address or the
// device node). An error wrapping serial.ErrNotFound means "not there (yet)".
type DialFunc func(ctx context.Context) (c Conn, name string, err error)

// Options configure a Port.
type Options struct {
	// What is the locator as the user wrote it, for errors and logs ("tcp:10.0.0.5:9100").
	What string
	// ReadTimeout is how long Read waits before it returns 0, nil; 0 means no limit.
	ReadTimeout time.Duration
	// WriteTimeout bounds each Write: if the peer takes nothing for this long, Write fails
	// with ErrStalled. 0 means 10 s.
	WriteTimeout time.Duration
	// DialTimeout bounds each dial; 0 means 5 s.
	DialTimeout time.Duration
	// Backoff is the wait before reconnect attempt n; nil means serial.DefaultBackoff
	// (25 ms doubling to 2 s, with jitter).
	Backoff func(attempt int) time.Duration
	// WaitForDevice makes Open succeed when the peer is not there yet (the Port starts
	// disconnected and connects when it can).
	WaitForDevice bool
	// OnEvent, if set, is called on connection changes; it must return quickly.
	OnEvent func(serial.Event)
	// Logger gets connection changes at Info and failed attempts at Debug; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Port is a connection that reconnects. One goroutine may Read while another Writes.
type Port struct {
	dial DialFunc
	opt  Options
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wmu    sync.Mutex

	mu          sync.Mutex
	cur         Conn
	name        string
	gen         uint64
	up          chan struct{} // closed while connected
	downAt      time.Time
	readTimeout time.Duration
	closed      bool
	done        chan struct{}
}

// Open dials once; without WaitForDevice a failure is returned, with it the Port starts
// disconnected and keeps dialling with backoff. ctx bounds only the first dial.
func Open(ctx context.Context, dial DialFunc, opt Options) (*Port, error) {
	if opt.WriteTimeout <= 0 {
		opt.WriteTimeout = 10 * time.Second
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = 5 * time.Second
	}
	if opt.Backoff == nil {
		opt.Backoff = serial.DefaultBackoff
	}
	p := &Port{dial: dial, opt: opt, log: opt.Logger, readTimeout: opt.ReadTimeout, done: make(chan struct{}), up: make(chan struct{})}
	if p.log == nil {
		p.log = slog.Default()
	}
	c, name, err := p.dialOnce(ctx)
	if err != nil && !opt.WaitForDevice {
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if err != nil {
		p.downAt = time.Now()
		p.wg.Add(1)
		p.emit(serial.Event{Kind: serial.Disconnected, Err: err})
		go p.reconnect()
		return p, nil
	}
	p.cur, p.name, p.gen = c, name, 1
	close(p.up)
	return p, nil
}

func (p *Port) dialOnce(ctx context.Context) (Conn, string, error) {
	ctx, cancel := context.WithTimeout(ctx, p.opt.DialTimeout)
	defer cancel()
	return p.dial(ctx)
}

// Gone reports whether err means the connection is lost: end of stream, reset, broken
// pipe, a device node that went away, a closed connection.
func Gone(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.ErrClosedPipe) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return true
	}
	for _, e := range []error{syscall.EIO, syscall.ENXIO, syscall.ENODEV, syscall.EBADF, syscall.EPIPE,
		syscall.ECONNRESET, syscall.ECONNABORTED, syscall.ETIMEDOUT, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func timedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (p *Port) emit(ev serial.Event) {
	switch ev.Kind {
	case serial.RetryFailed:
		p.log.Debug("port: reconnect attempt failed", "port", p.opt.What, "attempt", ev.Attempt, "err", ev.Err)
	case serial.Disconnected:
		p.log.Info("port: device disconnected", "port", p.opt.What, "device", ev.Name, "err", ev.Err)
	case serial.Connected:
		p.log.Info("port: device reconnected", "port", p.opt.What, "device", ev.Name, "attempt", ev.Attempt, "downtime", ev.Downtime)
	}
	if p.opt.OnEvent != nil {
		p.opt.OnEvent(ev)
	}
}

func (p *Port) snapshot() (Conn, uint64, chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, 0, nil, serial.ErrClosed
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
	p.emit(serial.Event{Kind: serial.Disconnected, Name: name, Err: cause})
	go p.reconnect()
}

func (p *Port) reconnect() {
	defer p.wg.Done()
	for attempt := 1; ; attempt++ {
		if wait.Sleep(p.ctx, p.opt.Backoff(attempt)) != nil {
			return
		}
		c, name, err := p.dialOnce(p.ctx)
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			p.emit(serial.Event{Kind: serial.RetryFailed, Attempt: attempt, Err: err})
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
		p.emit(serial.Event{Kind: serial.Connected, Name: name, Attempt: attempt, Downtime: down})
		return
	}
}

// Read reads what the peer sent. With a read timeout it returns 0, nil when nothing came in
// time (also while the peer is away); without one it waits, across a reconnect, until data
// arrives. It returns serial.ErrClosed after Close.
func (p *Port) Read(b []byte) (int, error) {
	rt := p.ReadTimeout()
	var deadline time.Time
	if rt > 0 {
		deadline = time.Now().Add(rt)
	}
	for {
		c, gen, up, err := p.snapshot()
		if err != nil {
			return 0, err
		}
		if c == nil {
			var timer <-chan time.Time
			if !deadline.IsZero() {
				t := time.NewTimer(time.Until(deadline))
				defer t.Stop()
				timer = t.C
			}
			select {
			case <-up:
				continue
			case <-p.done:
				return 0, serial.ErrClosed
			case <-timer:
				return 0, nil
			}
		}
		if err := c.SetReadDeadline(deadline); err != nil && !Gone(err) {
			return 0, fmt.Errorf("read %s: %w", p.opt.What, err)
		}
		n, err := c.Read(b)
		if err == nil || (n > 0 && !Gone(err)) {
			return n, nil
		}
		if timedOut(err) {
			return n, nil
		}
		if p.isClosed() {
			return 0, serial.ErrClosed
		}
		if Gone(err) {
			p.lost(gen, err)
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, fmt.Errorf("read %s: %w", p.opt.What, err)
	}
}

// Write sends all of b. A peer that is away fails it with serial.ErrDisconnected; one that
// takes no byte for the write timeout fails it with ErrStalled (which also wraps
// serial.ErrDisconnected: the connection is dropped and dialled again). Like serial.Port it
// does not resend after a reconnect: the caller decides.
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
			return n, fmt.Errorf("write %s: %w", p.opt.What, serial.ErrDisconnected)
		}
		if err := c.SetWriteDeadline(time.Now().Add(p.opt.WriteTimeout)); err != nil && !Gone(err) {
			return n, fmt.Errorf("write %s: %w", p.opt.What, err)
		}
		w, err := c.Write(b[n:])
		n += w
		if err == nil {
			continue
		}
		if p.isClosed() {
			return n, serial.ErrClosed
		}
		if timedOut(err) {
			if w > 0 { // it took some: slow, not stalled
				continue
			}
			p.lost(gen, ErrStalled)
			return n, fmt.Errorf("write %s: %w for %v: %w", p.opt.What, ErrStalled, p.opt.WriteTimeout, serial.ErrDisconnected)
		}
		if Gone(err) {
			p.lost(gen, err)
			return n, fmt.Errorf("write %s: %w: %v", p.opt.What, serial.ErrDisconnected, err)
		}
		return n, fmt.Errorf("write %s: %w", p.opt.What, err)
	}
	return n, nil
}

// SetReadTimeout sets how long Read waits; 0 or less means no limit.
func (p *Port) SetReadTimeout(d time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return serial.ErrClosed
	}
	p.readTimeout = d
	return nil
}

// ReadTimeout returns the read timeout (0: none).
func (p *Port) ReadTimeout() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(p.readTimeout, 0)
}

// WaitConnected returns nil at once when connected, else when the peer is back; ctx.Err()
// if ctx ends first, serial.ErrClosed if the port is closed.
func (p *Port) WaitConnected(ctx context.Context) error {
	_, _, up, err := p.snapshot()
	if err != nil {
		return err
	}
	select {
	case <-up:
		return nil
	case <-p.done:
		return serial.ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connected reports whether the port is connected now.
func (p *Port) Connected() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil
}

// Name returns the name of the current (or last) connection.
func (p *Port) Name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// Close closes the connection and stops reconnecting; it waits for the port's goroutine.
// Closing twice is harmless.
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
