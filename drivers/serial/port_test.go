package serial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/posagent/posagent"
)

func TestParseLocator(t *testing.T) {
	tests := []struct {
		in   string
		want Locator
	}{
		{"/dev/ttyUSB0", Locator{Path: "/dev/ttyUSB0"}},
		{"./sim/printer", Locator{Path: "sim/printer"}},
		{"ttyACM1", Locator{Path: "/dev/ttyACM1"}},
		{"usb-Honeywell_Imaging_1900-if00", Locator{Path: "/dev/serial/by-id/usb-Honeywell_Imaging_1900-if00"}},
		{"0c2e:0B61", Locator{VID: "0C2E", PID: "0B61"}},
		{"04b8:0e28:ABC:123", Locator{VID: "04B8", PID: "0E28", Serial: "ABC:123"}},
	}
	for _, tt := range tests {
		got, err := ParseLocator(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLocator(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if again, _ := ParseLocator(got.String()); again != got {
			t.Errorf("ParseLocator(%q.String() = %q) = %+v", tt.in, got.String(), again)
		}
	}
	for _, bad := range []string{"", "  ", "0c2e:0b6", "zz:yy", "COM3:"} {
		if _, err := ParseLocator(bad); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("ParseLocator(%q) error = %v, want ErrInvalidInput", bad, err)
		}
	}
}

// events collects a port's events on a channel.
type events chan Event

func (e events) on(ev Event) {
	if ev.Kind != RetryFailed {
		e <- ev
	}
}

func (e events) wait(t *testing.T, kind EventKind) Event {
	t.Helper()
	select {
	case ev := <-e:
		if ev.Kind != kind {
			t.Fatalf("event %v (%+v), want %v", ev.Kind, ev, kind)
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatalf("no %v event in 5 s", kind)
	}
	return Event{}
}

var quiet = slog.New(slog.DiscardHandler)

func openTest(t *testing.T, path string, opt Options) *Port {
	t.Helper()
	if opt.BytePace == 0 && opt.Sleep == nil {
		opt.BytePace = -1
	}
	if opt.Logger == nil {
		opt.Logger = quiet
	}
	if opt.Backoff == nil {
		opt.Backoff = func(int) time.Duration { return 5 * time.Millisecond }
	}
	p, err := Open(context.Background(), Locator{Path: path}, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestPort_ReadWrite(t *testing.T) {
	dev := newFakeDev(t)
	p := openTest(t, dev.link, Options{Baud: 115200, ReadTimeout: 50 * time.Millisecond})
	if _, err := p.Write([]byte("hello\x1b@")); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(); err != nil {
		t.Fatalf("Drain: %v", err)
	}
	if got, want := dev.readN(7), []byte("hello\x1b@"); !bytes.Equal(got, want) {
		t.Errorf("device got %q, want %q", got, want)
	}
	// A read with nothing to read times out with 0, nil.
	buf := make([]byte, 16)
	if n, err := p.Read(buf); n != 0 || err != nil {
		t.Errorf("idle Read = %d, %v; want 0, nil", n, err)
	}
	// Bytes arrive, possibly in several reads; none are changed by the line discipline.
	in := []byte("]Q1\r\n\x00\xff")
	dev.m().Write(in)
	var got []byte
	for deadline := time.Now().Add(2 * time.Second); len(got) < len(in) && time.Now().Before(deadline); {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, in) {
		t.Errorf("port read %q, want %q", got, in)
	}
}

func TestOpen_NotFound(t *testing.T) {
	_, err := Open(context.Background(), Locator{Path: t.TempDir() + "/nothing"}, Options{})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open(missing) error = %v, want ErrNotFound", err)
	}
	_, err = Open(context.Background(), Locator{VID: "0C2E", PID: "0B61"}, Options{
		Enumerate: func() ([]PortInfo, error) { return []PortInfo{{Name: "/dev/ttyS0"}}, nil },
	})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open(absent USB) error = %v, want ErrNotFound", err)
	}
}

func TestOpen_USB(t *testing.T) {
	dev := newFakeDev(t)
	ports := []PortInfo{
		{Name: "/dev/ttyS0"},
		{Name: dev.link, IsUSB: true, VID: "0C2E", PID: "0B61", Serial: "A1"},
		{Name: "/dev/null-other", IsUSB: true, VID: "0C2E", PID: "0B61", Serial: "B2"},
	}
	enum := func() ([]PortInfo, error) { return ports, nil }
	p, err := Open(context.Background(), Locator{VID: "0C2E", PID: "0B61", Serial: "A1"}, Options{Enumerate: enum})
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	_, err = Open(context.Background(), Locator{VID: "0C2E", PID: "0B61"}, Options{Enumerate: enum})
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("two matching devices without a serial number: error %v, want ambiguity", err)
	}
}

func TestPort_ReplugDuringRead(t *testing.T) {
	dev := newFakeDev(t)
	ev := make(events, 16)
	p := openTest(t, dev.link, Options{OnEvent: ev.on})
	first := p.Name()

	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 64)
		n, err := p.Read(buf) // no timeout: waits across the replug
		if err != nil {
			t.Errorf("Read across replug: %v", err)
		}
		got <- buf[:n]
	}()
	time.Sleep(20 * time.Millisecond)
	dev.unplug()
	down := ev.wait(t, Disconnected)
	if down.Name != first || down.Err == nil {
		t.Errorf("disconnected event %+v", down)
	}
	time.Sleep(30 * time.Millisecond) // a few failed attempts while the device is away
	dev.plug()
	up := ev.wait(t, Connected)
	if up.Name == "" || up.Name != p.Name() {
		t.Errorf("connected event %+v, port name %q", up, p.Name())
	}
	dev.m().Write([]byte("after"))
	select {
	case b := <-got:
		if string(b) != "after" {
			t.Errorf("read %q after replug, want %q", b, "after")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not resume after replug")
	}
}

func TestPort_ReplugMidWrite(t *testing.T) {
	dev := newFakeDev(t)
	ev := make(events, 16)
	// 9600 baud paced for real: 4 KiB take about 4 s, so the unplug lands mid-job.
	p := openTest(t, dev.link, Options{Baud: 9600, BytePace: 200 * time.Microsecond, OnEvent: ev.on})
	job := bytes.Repeat([]byte("0123456789abcdef"), 256)
	var sink bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the device reads what arrives until it is unplugged
		defer wg.Done()
		io.Copy(&sink, dev.m())
	}()
	go func() {
		time.Sleep(150 * time.Millisecond)
		dev.unplug()
	}()
	n, err := p.Write(job)
	if !errors.Is(err, ErrDisconnected) {
		t.Fatalf("Write during unplug: %d, %v; want ErrDisconnected", n, err)
	}
	if n <= 0 || n >= len(job) {
		t.Fatalf("Write wrote %d of %d bytes before the unplug, want part of the job", n, len(job))
	}
	wg.Wait()
	ev.wait(t, Disconnected)
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrDisconnected) {
		t.Errorf("Write while away: %v, want ErrDisconnected", err)
	}
	dev.plug()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write(job[n:]); err != nil {
		t.Fatalf("Write the rest after replug: %v", err)
	}
	if got := dev.readN(len(job) - n); !bytes.Equal(got, job[n:]) {
		t.Error("the new device did not receive the rest of the job")
	}
}

func TestPort_Pacing(t *testing.T) {
	dev := newFakeDev(t)
	var mu sync.Mutex
	var slept time.Duration
	var calls int
	p := openTest(t, dev.link, Options{Baud: 9600, ChunkSize: 64, BytePace: 0,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			slept += d
			calls++
			mu.Unlock()
			return ctx.Err()
		}})
	go io.Copy(io.Discard, dev.m())
	if _, err := p.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// 8N1 is 10 bits a byte: 1000 bytes at 9600 baud take 1000*10/9600 s.
	if want := 1000 * 10 * time.Second / 9600; slept < want-time.Millisecond || slept > want+time.Millisecond {
		t.Errorf("paced %v, want %v", slept, want)
	}
	if got, want := calls, 16; got != want { // ceil(1000/64) chunks
		t.Errorf("%d chunks, want %d", got, want)
	}
}

func TestPort_CloseWhileAway(t *testing.T) {
	before := runtime.NumGoroutine()
	dev := newFakeDev(t)
	ev := make(events, 16)
	p, err := Open(context.Background(), Locator{Path: dev.link}, Options{OnEvent: ev.on, Logger: quiet,
		Backoff: func(int) time.Duration { return time.Hour }})
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		readErr <- err
	}()
	dev.unplug()
	ev.wait(t, Disconnected)
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs while the port is reconnecting")
	}
	if err := <-readErr; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Read after Close: %v, want ErrClosed", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	// No goroutine of the port outlives Close.
	for i := 0; runtime.NumGoroutine() > before && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

func TestPort_ReadTimeoutWhileAway(t *testing.T) {
	dev := newFakeDev(t)
	ev := make(events, 16)
	p := openTest(t, dev.link, Options{ReadTimeout: 30 * time.Millisecond, OnEvent: ev.on,
		Backoff: func(int) time.Duration { return time.Hour }})
	dev.unplug()
	buf := make([]byte, 8)
	p.Read(buf) // sees the hangup
	ev.wait(t, Disconnected)
	start := time.Now()
	n, err := p.Read(buf)
	if n != 0 || err != nil {
		t.Fatalf("Read while away = %d, %v; want 0, nil (timeout)", n, err)
	}
	if el := time.Since(start); el < 25*time.Millisecond {
		t.Errorf("Read while away returned after %v, before the timeout: a busy loop", el)
	}
}

// TestOpen_WaitForDevice: a device absent at start is connected when it appears, and a
// write made before that waits for it.
func TestOpen_WaitForDevice(t *testing.T) {
	dev := newFakeDev(t)
	dev.unplug()
	ev := make(events, 8)
	p := openTest(t, dev.link, Options{Baud: 115200, WaitForDevice: true, OnEvent: ev.on})
	ev.wait(t, Disconnected)
	if p.Connected() {
		t.Fatal("Connected() before the device exists")
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		dev.plug()
	}()
	ev.wait(t, Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Write([]byte("late")); err != nil {
		t.Fatal(err)
	}
	if got := dev.readN(4); string(got) != "late" {
		t.Fatalf("device got %q", got)
	}
}

// TestPort_WatchNoticesUnplugWithoutIO: a port nobody reads or writes (a display between
// screens) reports the unplug through Watch, and comes back on its own.
func TestPort_WatchNoticesUnplugWithoutIO(t *testing.T) {
	dev := newFakeDev(t)
	ev := make(events, 8)
	openTest(t, dev.link, Options{Watch: 10 * time.Millisecond, OnEvent: ev.on})
	dev.unplug()
	if got := ev.wait(t, Disconnected); !errors.Is(got.Err, ErrDisconnected) {
		t.Fatalf("disconnect cause %v, want ErrDisconnected", got.Err)
	}
	dev.plug()
	ev.wait(t, Connected)
}

// TestPort_NoWatch: without Watch an idle port notices nothing (the watch is what reports).
func TestPort_NoWatch(t *testing.T) {
	dev := newFakeDev(t)
	ev := make(events, 8)
	p := openTest(t, dev.link, Options{OnEvent: ev.on})
	dev.unplug()
	if !p.Connected() {
		t.Fatal("an idle port without Watch reported the unplug: the watch test proves nothing")
	}
	select {
	case e := <-ev:
		t.Fatalf("event %+v without Watch and without I/O", e)
	default:
	}
}
