// Package possim simulates the terminal's peripherals on pseudo-terminals, for tests,
// demos and technicians: a receipt printer (ESC/POS), a barcode/QR scanner and a 2×20
// customer display, each behind a stable link in a directory (DIR/printer, DIR/scanner,
// DIR/display) that drivers open like real serial ports, and a control interface (HTTP on
// 127.0.0.1, its address in DIR/control.addr) to scan codes, read the display, change the
// printer's state and unplug devices.
package possim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"
)

// Device names, which are also the link names in the directory.
const (
	PrinterName = "printer"
	ScannerName = "scanner"
	DisplayName = "display"
)

// Sim is the set of simulated devices in one directory.
type Sim struct {
	Dir     string
	Printer *Printer
	Scanner *Scanner
	Display *Display
	LED     *LEDDisplay // the 8-digit LED price display, on DIR/led8
	// TCPPrinter, if set (before Run), is served by Run: the same printer on a TCP port.
	TCPPrinter *TCPPrinter

	devices map[string]*device
	mu      sync.Mutex
	closed  bool
}

// device runs one simulated device on its link, across unplugs.
type device struct {
	name  string
	link  *Link
	serve func(context.Context, io.ReadWriter) error
	pull  func() // tells the device it is being unplugged (the printer's Serve returns)

	mu       sync.Mutex
	plugged  chan struct{} // closed while plugged
	cancel   context.CancelFunc
	replugAt *time.Timer
}

// New creates dir if needed and the devices' ptys and links in it. Run serves them.
func New(dir string) (*Sim, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("possim: %w", err)
	}
	s := &Sim{Dir: dir, Printer: NewPrinter(dir), Scanner: NewScanner(), Display: NewDisplay(), LED: NewLEDDisplay(), devices: map[string]*device{}}
	add := func(name string, serve func(context.Context, io.ReadWriter) error, pull func()) error {
		path, err := linkPath(dir, name)
		if err != nil {
			return err
		}
		l, err := NewLink(path)
		if err != nil {
			return fmt.Errorf("possim: %w", err)
		}
		d := &device{name: name, link: l, serve: serve, pull: pull, plugged: make(chan struct{})}
		close(d.plugged)
		s.devices[name] = d
		return nil
	}
	if err := add(PrinterName, s.Printer.Serve, s.Printer.Unplug); err != nil {
		s.close()
		return nil, err
	}
	if err := add(ScannerName, s.Scanner.Serve, nil); err != nil {
		s.close()
		return nil, err
	}
	if err := add(DisplayName, s.Display.Serve, nil); err != nil {
		s.close()
		return nil, err
	}
	if err := add(LEDName, s.LED.Serve, nil); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// Path returns the link of a device (DIR/printer, …), "" for an unknown name.
func (s *Sim) Path(name string) string {
	if d, ok := s.devices[name]; ok {
		return d.link.Path
	}
	return ""
}

// TTY returns the pty a device is on now, "" while unplugged.
func (s *Sim) TTY(name string) string {
	if d, ok := s.devices[name]; ok {
		return d.link.TTY()
	}
	return ""
}

// Names returns the device names, sorted.
func (s *Sim) Names() []string {
	var n []string
	for k := range s.devices {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Run serves every device until ctx is done, then closes the ptys and removes the links.
func (s *Sim) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, d := range s.devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.run(ctx)
		}()
	}
	if t := s.TCPPrinter; t != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Serve(ctx) //nolint:errcheck // it stops with ctx
		}()
	}
	<-ctx.Done()
	s.close()
	wg.Wait()
	return nil
}

func (s *Sim) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for _, d := range s.devices {
		d.mu.Lock()
		if d.replugAt != nil {
			d.replugAt.Stop()
		}
		d.mu.Unlock()
		d.link.Unplug()
	}
}

func (d *device) run(ctx context.Context) {
	for ctx.Err() == nil {
		d.mu.Lock()
		plugged := d.plugged
		d.mu.Unlock()
		select {
		case <-plugged:
		case <-ctx.Done():
			return
		}
		m := d.link.Master()
		if m == nil { // unplugged again in between
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		d.mu.Lock()
		d.cancel = cancel
		d.mu.Unlock()
		err := d.serve(sctx, m)
		cancel()
		if err != nil && sctx.Err() == nil && !errors.Is(err, ErrUnplugged) && d.link.Master() == m {
			// The line failed without an unplug: wait a little and serve it again.
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
}

// Unplug pulls the device: its pty is closed (the driver's reads and writes fail) and its
// link removed. After down it is plugged in again on a new pty behind the same link; with
// down < 0 it stays out until Plug.
func (s *Sim) Unplug(name string, down time.Duration) error {
	d, ok := s.devices[name]
	if !ok {
		return fmt.Errorf("possim: no device %q", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.plugged:
	default:
		return fmt.Errorf("possim: %s: %w", name, ErrNotPlugged)
	}
	d.plugged = make(chan struct{})
	if d.pull != nil {
		d.pull()
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.link.Unplug()
	if down >= 0 {
		d.replugAt = time.AfterFunc(down, func() { s.Plug(name) })
	}
	return nil
}

// Plug plugs an unplugged device in again, on a new pty behind its link.
func (s *Sim) Plug(name string) error {
	d, ok := s.devices[name]
	if !ok {
		return fmt.Errorf("possim: no device %q", name)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("possim: %s: simulator stopped", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.plugged:
		return nil
	default:
	}
	if err := d.link.Plug(); err != nil {
		return err
	}
	close(d.plugged)
	return nil
}
