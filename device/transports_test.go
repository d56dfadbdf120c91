package device

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

// TestAgent_TCPPrinterAndLEDDisplay runs a sale with the receipt printer on the network
// (tcp:) and the 8-digit LED price display (led8): the display shows the total with the
// total lamp, then the amount paid with the collect lamp; the receipt comes out of the
// network printer; the printer going away and coming back is reported as device events.
func TestAgent_TCPPrinterAndLEDDisplay(t *testing.T) {
	tcp := possimtest.TCPPrinter(t, 384)
	e := newEnv(t, func(c *Config) {
		c.Devices.Printer.Port = "tcp:" + tcp.Addr()
		c.Devices.Display.Port = filepath.Join(filepath.Dir(c.Devices.Display.Port), possim.LEDName)
		c.Devices.Display.Protocol = "led8"
	})
	ev := e.subscribe("")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p := e.create(1250, "k-tcp-led-1", ModeScan)
	if err := e.sim.LED.Wait(ctx, func(v, l string) bool { return v == "12.50" && l == "total" }); err != nil {
		t.Fatal(err)
	}
	e.scan(wechatCode)
	if got := e.wait(p.ID, done); got.State != PaymentApproved {
		t.Fatalf("payment %+v", got)
	}
	if err := e.sim.LED.Wait(ctx, func(v, l string) bool { return v == "12.50" && l == "collect" }); err != nil {
		t.Fatal(err)
	}
	ev.next(t, "receipt", func(m map[string]any) bool { return m["payment_id"] == p.ID && m["printed"] == float64(1) })
	job, err := tcp.Printer.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(job.Text, "CUSTOMER COPY") || !strings.Contains(job.Text, "12.50") {
		t.Errorf("receipt:\n%s", job.Text)
	}
	if n := e.sim.LED.Unknown(); n != 0 {
		t.Errorf("the LED display did not understand %d bytes", n)
	}

	// The printer goes away: the status page's DLE EOT finds it gone, the port reports it
	// and reconnects when the printer is back.
	tcp.GoAway()
	var st Status
	e.do("GET", "/v1/status", nil, &st)
	ev.next(t, "device", func(m map[string]any) bool { return m["device"] == "printer" && m["connected"] == false })
	if err := tcp.ComeBack(); err != nil {
		t.Fatal(err)
	}
	ev.next(t, "device", func(m map[string]any) bool { return m["device"] == "printer" && m["connected"] == true })
	e.do("GET", "/v1/status", nil, &st)
	for _, d := range st.Devices {
		if d.Device == "printer" && (!d.Connected || d.Status != "ready" || d.Port != "tcp:"+tcp.Addr()) {
			t.Errorf("printer after it came back: %+v", d)
		}
	}
}
