package netport_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/netport"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp:10.0.0.5", "10.0.0.5:9100"},
		{"tcp:10.0.0.5:9101", "10.0.0.5:9101"},
		{"printer.local", "printer.local:9100"},
		{"tcp:[fe80::1]:9100", "[fe80::1]:9100"},
		{"tcp:[fe80::1]", "[fe80::1]:9100"},
		{"tcp:fe80::1", "[fe80::1]:9100"},
	} {
		got, err := netport.ParseAddr(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseAddr(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"tcp:", "tcp:host:0", "tcp:host:70000", "tcp:host:x", "tcp:a b", "tcp:[::1"} {
		if got, err := netport.ParseAddr(in); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("ParseAddr(%q) = %q, %v; want an invalid-input error", in, got, err)
		}
	}
}

// receipt is a short receipt with the lines the tests look for.
func receipt(t testing.TB, marker string) *posagent.Receipt {
	t.Helper()
	rc := &posagent.Receipt{
		Currency: "CNY", Header: []string{"TCP SHOP"},
		Items:    []posagent.ReceiptItem{{Name: "Water " + marker, Quantity: 2, UnitPrice: 300, Amount: 600}},
		Totals:   []posagent.ReceiptLine{{Label: "Total", Amount: 600}},
		Payments: []posagent.ReceiptLine{{Label: "Cash", Amount: 600}},
	}
	if err := rc.Validate(); err != nil {
		t.Fatal(err)
	}
	return rc
}

// events collects a port's connection events on a channel.
func events() (chan serial.Event, func(serial.Event)) {
	ch := make(chan serial.Event, 64)
	return ch, func(ev serial.Event) {
		select {
		case ch <- ev:
		default:
		}
	}
}

func waitEvent(t *testing.T, ch <-chan serial.Event, kind serial.EventKind) serial.Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-ch:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %v event within 20 s", kind)
		}
	}
}

func openPrinter(t *testing.T, addr string, opt connport.Options) (*connport.Port, *escpos.Printer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	port, err := netport.Open(ctx, netport.Prefix+addr, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { port.Close() })
	prof, err := escpos.LoadProfile("generic-80", "")
	if err != nil {
		t.Fatal(err)
	}
	rate, chunk := ports.PrinterPacing(netport.Prefix+addr, 0)
	return port, escpos.New(port, prof, escpos.Options{Baud: rate, ChunkSize: chunk})
}

func TestPrint_TCP(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	_, pr := openPrinter(t, sim.Addr(), connport.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := pr.Print(ctx, receipt(t, "FIRST"))
	if err != nil {
		t.Fatalf("Print: %v", err)
	}
	if res.Before.Offline || res.After.Offline || res.Before.Err() != nil {
		t.Errorf("status before %v, after %v; want online both (DLE EOT answered through the socket)", res.Before, res.After)
	}
	job, err := sim.Printer.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(job.Lines, "\n"); !strings.Contains(got, "Water FIRST") || !strings.Contains(got, "TCP SHOP") {
		t.Errorf("printed:\n%s\nwant the header and the item", got)
	}
	if job.Cuts != 1 {
		t.Errorf("cuts = %d, want 1", job.Cuts)
	}
}

func TestPrint_TCPPaperOut(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	_, pr := openPrinter(t, sim.Addr(), connport.Options{})
	sim.Printer.PaperOut(true)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := pr.Print(ctx, receipt(t, "NOPAPER"))
	if got, want := escpos.Reason(err), "paper-end"; got != want {
		t.Fatalf("Print with the paper out = %v (reason %q), want reason %q", err, got, want)
	}
}

// TestPrint_TCPGoneAndBack: a printer that goes away fails the job in progress (or the next
// one), the port reconnects when it is back, and the next job prints.
func TestPrint_TCPGoneAndBack(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	evs, onEvent := events()
	port, pr := openPrinter(t, sim.Addr(), connport.Options{OnEvent: onEvent, Backoff: func(int) time.Duration { return 10 * time.Millisecond }})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := pr.Print(ctx, receipt(t, "ONE")); err != nil {
		t.Fatalf("first Print: %v", err)
	}
	if _, err := sim.Printer.WaitJob(ctx, 1); err != nil {
		t.Fatal(err)
	}

	sim.GoAway()
	_, err := pr.Print(ctx, receipt(t, "LOST"))
	if err == nil {
		t.Fatal("Print to a printer that went away succeeded")
	}
	if got := escpos.Reason(err); got != "offline" && !errors.Is(err, serial.ErrDisconnected) {
		t.Errorf("Print to a printer that went away = %v, want offline or disconnected", err)
	}
	waitEvent(t, evs, serial.Disconnected)
	waitEvent(t, evs, serial.RetryFailed) // refused while away
	if port.Connected() {
		t.Error("Connected() = true while the printer is away")
	}

	if err := sim.ComeBack(); err != nil {
		t.Fatal(err)
	}
	if err := port.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
	ev := waitEvent(t, evs, serial.Connected)
	if ev.Name != sim.Addr() {
		t.Errorf("Connected to %q, want %q", ev.Name, sim.Addr())
	}
	if _, err := pr.Print(ctx, receipt(t, "TWO")); err != nil {
		t.Fatalf("Print after the printer came back: %v", err)
	}
	job, err := sim.Printer.WaitJob(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range sim.Printer.Jobs() {
		if strings.Contains(strings.Join(j.Lines, "\n"), "Water LOST") {
			t.Errorf("job %d has the receipt sent while the printer was away", j.N)
		}
	}
	if got := strings.Join(job.Lines, "\n"); !strings.Contains(got, "Water TWO") {
		t.Errorf("job 2 printed:\n%s\nwant Water TWO", got)
	}
}

// TestWrite_TCPStalled: a printer that accepts the connection but never reads makes a
// write fail with ErrStalled once the socket buffers are full and the write timeout
// passes, instead of blocking for ever.
func TestWrite_TCPStalled(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	sim.Stall(true)
	port, _ := openPrinter(t, sim.Addr(), connport.Options{WriteTimeout: 300 * time.Millisecond})
	// Far more than the loopback socket buffers of both sides hold.
	data := bytes.Repeat([]byte("stalled printer line\n"), 64<<20/21)
	done := make(chan error, 1)
	go func() {
		_, err := port.Write(data)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, connport.ErrStalled) || !errors.Is(err, serial.ErrDisconnected) {
			t.Fatalf("Write to a stalled printer = %v, want ErrStalled and ErrDisconnected", err)
		}
		if !strings.Contains(err.Error(), "not reading") {
			t.Errorf("error %q does not say the printer is not reading", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Write to a stalled printer still blocked after 60 s")
	}
}

// TestPrint_TCPStalledStatus: the printer driver asks for the status first; a printer that
// never reads never answers, and the job is refused as offline, nothing sent.
func TestPrint_TCPStalledStatus(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	sim.Stall(true)
	_, pr := openPrinter(t, sim.Addr(), connport.Options{WriteTimeout: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := pr.Print(ctx, receipt(t, "STALL"))
	if !errors.Is(err, escpos.ErrNoAnswer) {
		t.Fatalf("Print to a stalled printer = %v, want ErrNoAnswer", err)
	}
	var je *escpos.JobError
	if !errors.As(err, &je) || je.Stage != "before" || je.Sent != 0 {
		t.Errorf("error %#v: want the job refused before sending", err)
	}
}

func TestOpen_TCPRefused(t *testing.T) {
	sim := possimtest.TCPPrinter(t, 576)
	addr := sim.Addr()
	sim.GoAway()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := netport.Open(ctx, addr, connport.Options{})
	if !errors.Is(err, serial.ErrNotFound) {
		t.Fatalf("Open of a closed port = %v, want ErrNotFound", err)
	}
	p, err := netport.Open(ctx, addr, connport.Options{WaitForDevice: true})
	if err != nil {
		t.Fatalf("Open with WaitForDevice: %v", err)
	}
	defer p.Close()
	if p.Connected() {
		t.Fatal("connected to a printer that is away")
	}
	if err := sim.ComeBack(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
}
