package connport

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/serial"
)

// pipeDialer dials in-memory connections (net.Pipe: deadlines work); the test holds the
// other ends.
type pipeDialer struct {
	mu    sync.Mutex
	peers chan net.Conn
	down  bool
}

func (d *pipeDialer) dial(ctx context.Context) (Conn, string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return nil, "pipe", serial.ErrNotFound
	}
	a, b := net.Pipe()
	d.peers <- b
	return a, "pipe", nil
}

func TestPort_ReadTimeoutAndClose(t *testing.T) {
	d := &pipeDialer{peers: make(chan net.Conn, 4)}
	p, err := Open(context.Background(), d.dial, Options{What: "test"})
	if err != nil {
		t.Fatal(err)
	}
	peer := <-d.peers
	defer peer.Close()
	p.SetReadTimeout(10 * time.Millisecond)
	var b [4]byte
	if n, err := p.Read(b[:]); n != 0 || err != nil {
		t.Fatalf("Read with nothing sent = %d, %v; want 0, nil", n, err)
	}
	p.SetReadTimeout(0)
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(b[:])
		done <- err
	}()
	p.Close()
	if err := <-done; !errors.Is(err, serial.ErrClosed) {
		t.Fatalf("Read blocked across Close = %v, want ErrClosed", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, serial.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestPort_LostAndBack(t *testing.T) {
	d := &pipeDialer{peers: make(chan net.Conn, 4)}
	evs := make(chan serial.Event, 16)
	onEvent := func(ev serial.Event) {
		select { // never block the port's goroutine
		case evs <- ev:
		default:
		}
	}
	p, err := Open(context.Background(), d.dial, Options{What: "test", OnEvent: onEvent,
		Backoff: func(int) time.Duration { return time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	peer := <-d.peers
	d.mu.Lock()
	d.down = true
	d.mu.Unlock()
	peer.Close() // the peer hangs up
	p.SetReadTimeout(time.Second)
	var b [4]byte
	if n, err := p.Read(b[:]); n != 0 || err != nil {
		t.Errorf("Read from a peer that hung up = %d, %v; want 0, nil after the read timeout", n, err)
	}
	if ev := <-evs; ev.Kind != serial.Disconnected || !Gone(ev.Err) {
		t.Fatalf("event %+v, want Disconnected", ev)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, serial.ErrDisconnected) {
		t.Errorf("Write while away = %v, want ErrDisconnected", err)
	}
	if ev := <-evs; ev.Kind != serial.RetryFailed {
		t.Fatalf("event %+v, want RetryFailed", ev)
	}
	d.mu.Lock()
	d.down = false
	d.mu.Unlock()
	if err := p.WaitConnected(context.Background()); err != nil {
		t.Fatal(err)
	}
	peer = <-d.peers
	defer peer.Close()
	go peer.Write([]byte("ok"))
	if n, err := p.Read(b[:]); err != nil || string(b[:n]) != "ok" {
		t.Errorf("Read after reconnect = %q, %v", b[:n], err)
	}
}

func TestGone(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{io.EOF, true}, {syscall.ECONNRESET, true}, {syscall.EPIPE, true}, {syscall.ENODEV, true},
		{net.ErrClosed, true}, {errors.New("other"), false}, {syscall.EAGAIN, false},
	} {
		if got := Gone(tc.err); got != tc.want {
			t.Errorf("Gone(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
