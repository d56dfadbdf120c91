package possim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
)

// TCPPrinter is the simulated printer on a TCP port, as a network receipt printer serves
// raw ESC/POS on port 9100: the same emulation as on the pty (jobs, status answers through
// the socket), one connection served at a time (a second client waits in the backlog, as
// with real printers). It can go away (listener and connection closed: clients see the
// connection reset or refused) and come back on the same address, and it can stall:
// accept connections and never read them, as a printer whose buffer is full and never
// drains, so that clients' writes block once the socket buffers are full.
type TCPPrinter struct {
	Printer *Printer

	mu      sync.Mutex
	addr    string // the address it listens on (fixed after the first listen)
	ln      net.Listener
	conns   map[net.Conn]bool
	stalled bool
	wake    chan struct{} // closed and replaced when the listener changes
	serving sync.WaitGroup
}

// NewTCPPrinter listens on addr ("127.0.0.1:0" for a free port) for p. Serve serves it.
func NewTCPPrinter(p *Printer, addr string) (*TCPPrinter, error) {
	t := &TCPPrinter{Printer: p, addr: addr, conns: map[net.Conn]bool{}, wake: make(chan struct{})}
	if err := t.listen(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *TCPPrinter) listen() error {
	ln, err := net.Listen("tcp", t.addr)
	if err != nil {
		return fmt.Errorf("possim tcp printer: %w", err)
	}
	t.ln, t.addr = ln, ln.Addr().String()
	close(t.wake)
	t.wake = make(chan struct{})
	return nil
}

// Addr returns the address it listens on, host:port.
func (t *TCPPrinter) Addr() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addr
}

// Up reports whether it listens now.
func (t *TCPPrinter) Up() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.ln != nil
}

// Serve accepts and serves connections until ctx is done, across GoAway and ComeBack.
func (t *TCPPrinter) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { t.GoAway() })
	defer stop()
	for ctx.Err() == nil {
		t.mu.Lock()
		ln, wake := t.ln, t.wake
		t.mu.Unlock()
		if ln == nil {
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				continue
			}
		}
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				continue // gone away, or stopping
			}
			return fmt.Errorf("possim tcp printer: %w", err)
		}
		t.mu.Lock()
		if t.ln != ln { // went away meanwhile
			t.mu.Unlock()
			c.Close()
			continue
		}
		t.conns[c] = true
		stalled := t.stalled
		t.mu.Unlock()
		if stalled {
			continue // held open, never read, until GoAway
		}
		t.serve(ctx, c) // one at a time
	}
	t.serving.Wait()
	return nil
}

func (t *TCPPrinter) serve(ctx context.Context, c net.Conn) {
	t.serving.Add(1)
	defer t.serving.Done()
	t.Printer.Serve(ctx, c) //nolint:errcheck // the client hung up, or the printer went away
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// GoAway closes the listener and every connection: clients' reads end, their writes fail
// and new connections are refused until ComeBack. Going away twice does nothing.
func (t *TCPPrinter) GoAway() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil {
		t.ln.Close()
		t.ln = nil
	}
	for c := range t.conns {
		c.Close()
		delete(t.conns, c)
	}
}

// ComeBack listens again on the same address.
func (t *TCPPrinter) ComeBack() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ln != nil {
		return nil
	}
	return t.listen()
}

// Stall makes the printer accept connections from now on without ever reading them (on),
// or serve them again (off; stalled connections stay stalled until GoAway).
func (t *TCPPrinter) Stall(on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stalled = on
}

// Stalled reports whether new connections are stalled.
func (t *TCPPrinter) Stalled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stalled
}

// tcpRoutes adds the TCP printer's control routes:
//
//	GET  /tcp-printer           {"addr", "up", "stalled"}
//	POST /tcp-printer/down      the printer goes away (connections closed, refused after)
//	POST /tcp-printer/up        it comes back on the same address
//	POST /tcp-printer/stall     {"on": true}: accept connections and never read them
func (s *Sim) tcpRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /tcp-printer", func(w http.ResponseWriter, r *http.Request) {
		t := s.TCPPrinter
		if t == nil {
			fail(w, http.StatusNotFound, errors.New("no tcp printer (start possim with --tcp-printer ADDR)"))
			return
		}
		reply(w, http.StatusOK, map[string]any{"addr": t.Addr(), "up": t.Up(), "stalled": t.Stalled()})
	})
	op := func(path string, f func(t *TCPPrinter, w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc("POST /tcp-printer/"+path, func(w http.ResponseWriter, r *http.Request) {
			if s.TCPPrinter == nil {
				fail(w, http.StatusNotFound, errors.New("no tcp printer (start possim with --tcp-printer ADDR)"))
				return
			}
			f(s.TCPPrinter, w, r)
		})
	}
	op("down", func(t *TCPPrinter, w http.ResponseWriter, r *http.Request) { t.GoAway(); done(w, nil) })
	op("up", func(t *TCPPrinter, w http.ResponseWriter, r *http.Request) { done(w, t.ComeBack()) })
	op("stall", func(t *TCPPrinter, w http.ResponseWriter, r *http.Request) {
		req := struct {
			On *bool `json:"on"`
		}{}
		if !decode(w, r, &req) {
			return
		}
		t.Stall(req.On == nil || *req.On)
		done(w, nil)
	})
}
