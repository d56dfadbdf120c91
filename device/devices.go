package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/camera"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/offline"
)

// DeviceState is one peripheral as the status page and the event stream show it.
type DeviceState struct {
	Device     string `json:"device"`
	Configured bool   `json:"configured"`
	Port       string `json:"port,omitempty"`
	TTY        string `json:"tty,omitempty"`
	Connected  bool   `json:"connected"`
	Status     string `json:"status,omitempty"` // the printer's own status (DLE EOT)
	Error      string `json:"error,omitempty"`
}

// codeSource is where scanned codes come from: a serial or keyboard-mode (HID) scanner,
// both through drivers/scanner's framing and classification, or a camera (cameraScanner,
// the qr decoder and the same classification).
type codeSource interface {
	Next(ctx context.Context) (scanner.Scan, error)
	Close() error
}

// framedSource is a scanner port with drivers/scanner's framer on it.
type framedSource struct {
	*scanner.Scanner
	port ports.Port
}

func (s framedSource) Close() error { return s.port.Close() }

// peripherals are the scanner, printer and display. Each may be absent from the config,
// absent from the machine at start, or come and go while the agent runs: ports are
// opened with WaitForDevice and reconnect on their own, whatever their transport (serial,
// tcp:, usblp:, hid:; see drivers/ports).
type peripherals struct {
	log   *slog.Logger
	ports map[string]ports.Port

	scanner codeSource
	camera  *cameraScanner // the scanner, when it is a camera
	printer *escpos.Printer

	dmu     sync.Mutex
	display *display.Display
	screen  *display.Screen // what the display should show now

	onEvent func(DeviceState)
}

// openScanner opens the scanner's port by its form and puts the framer on it: serial
// scanners send CODE SUFFIX, keyboard-mode scanners' decoders give CODE CR.
func (d *peripherals) openScanner(ctx context.Context, cfg ScannerConfig) (ports.Port, codeSource, error) {
	suffix, _ := scanner.ParseSuffix(cfg.Suffix)
	opt := d.portOptions("scanner", cfg.Baud)
	switch ports.KindOf(cfg.Port) {
	case ports.HID: // the decoder ends each code with CR whatever the config says
		suffix = scanner.SuffixCR
	}
	p, err := ports.OpenScanner(ctx, cfg.Port, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("open scanner %s: %w", cfg.Port, err)
	}
	sc, err := scanner.New(p, scanner.Config{Frame: scanner.FrameConfig{Suffix: suffix, Prefix: cfg.Prefix}, Logger: d.log.With("device", "scanner")})
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, framedSource{sc, p}, nil
}

func (d *peripherals) portOptions(name string, baud int) ports.Options {
	return ports.Options{
		Baud: baud, WaitForDevice: true, Watch: 500 * time.Millisecond, Logger: d.log.With("device", name),
		OnEvent: func(ev serial.Event) { d.portEvent(name, ev) },
	}
}

func openPeripherals(ctx context.Context, cfg DevicesConfig, log *slog.Logger, onEvent func(DeviceState)) (*peripherals, error) {
	d := &peripherals{log: log, ports: map[string]ports.Port{}, onEvent: onEvent}
	open := func(name, port string, baud int) (ports.Port, error) {
		if port == "" {
			return nil, nil
		}
		p, err := ports.Open(ctx, port, d.portOptions(name, baud))
		if err != nil {
			return nil, fmt.Errorf("open %s %s: %w", name, port, err)
		}
		d.ports[name] = p
		return p, nil
	}
	if camera.IsPort(cfg.Scanner.Port) {
		cam, err := openCamera(cfg.Scanner.Port, log, onEvent)
		if err != nil {
			d.Close()
			return nil, fmt.Errorf("open scanner %s: %w", cfg.Scanner.Port, err)
		}
		d.camera, d.scanner = cam, cam
	} else if cfg.Scanner.Port != "" {
		p, src, err := d.openScanner(ctx, cfg.Scanner)
		if err != nil {
			d.Close()
			return nil, err
		}
		d.ports["scanner"], d.scanner = p, src
	}
	if p, err := open("printer", cfg.Printer.Port, cfg.Printer.Baud); err != nil {
		d.Close()
		return nil, err
	} else if p != nil {
		prof, err := escpos.LoadProfile(cfg.Printer.Profile, cfg.Printer.ProfileDir)
		if err != nil {
			d.Close()
			return nil, err
		}
		rate, chunk := ports.PrinterPacing(cfg.Printer.Port, cfg.Printer.Baud)
		d.printer = escpos.New(p, prof, escpos.Options{Baud: rate, ChunkSize: chunk})
	}
	if p, err := open("display", cfg.Display.Port, cfg.Display.Baud); err != nil {
		d.Close()
		return nil, err
	} else if p != nil {
		proto, _ := display.ParseProtocol(cfg.Display.Protocol)
		d.display, _ = display.New(p, proto)
		if p.Connected() {
			d.display.Init()
		}
	}
	return d, nil
}

func (d *peripherals) portEvent(name string, ev serial.Event) {
	switch ev.Kind {
	case serial.Connected:
		if name == "display" {
			go d.redraw()
		}
		d.onEvent(DeviceState{Device: name, Configured: true, TTY: ev.Name, Connected: true})
	case serial.Disconnected:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		d.onEvent(DeviceState{Device: name, Configured: true, TTY: ev.Name, Connected: false, Error: msg})
	}
}

// redraw shows the current screen again on a display that came back.
func (d *peripherals) redraw() {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	if d.display == nil {
		return
	}
	d.display.Init()
	if d.screen != nil {
		d.display.Show(*d.screen)
	}
}

// show puts s on the display; a display that is away gets it when it comes back.
func (d *peripherals) show(s display.Screen) {
	d.dmu.Lock()
	defer d.dmu.Unlock()
	d.screen = &s
	if d.display == nil {
		return
	}
	if err := d.display.Show(s); err != nil && !errors.Is(err, serial.ErrDisconnected) {
		d.log.Warn("display", "err", err)
	}
}

// states reports every device; the printer's status is asked from the printer.
func (d *peripherals) states(ctx context.Context, cfg DevicesConfig) []DeviceState {
	var out []DeviceState
	for _, x := range []struct{ name, port string }{{"scanner", cfg.Scanner.Port}, {"printer", cfg.Printer.Port}, {"display", cfg.Display.Port}} {
		st := DeviceState{Device: x.name, Configured: x.port != "", Port: x.port}
		if p := d.ports[x.name]; p != nil {
			st.Connected, st.TTY = p.Connected(), p.Name()
		} else if x.name == "scanner" && d.camera != nil {
			st.Connected, st.TTY = d.camera.state()
		}
		if x.name == "printer" && d.printer != nil && st.Connected {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			s, err := d.printer.Status(sctx)
			cancel()
			if err != nil {
				st.Error = err.Error()
			} else {
				st.Status = s.String()
			}
		}
		out = append(out, st)
	}
	return out
}

// Close closes the scanner's source and the ports (closing a port twice is harmless).
func (d *peripherals) Close() {
	if d.scanner != nil {
		d.scanner.Close()
	}
	for _, p := range d.ports {
		p.Close()
	}
}

// receipt is the sale's receipt, one copy.
func (a *Agent) receipt(p *Payment, copyName string) *posagent.Receipt {
	m := a.cfg.Merchant
	cur := mustCurrency(p.Currency)
	rc := &posagent.Receipt{Currency: p.Currency, Header: append([]string(nil), m.Header...), Footer: append([]string(nil), m.Footer...)}
	if len(rc.Header) == 0 && m.Name != "" {
		rc.Header = []string{m.Name}
	}
	label := p.SchemeName
	if label == "" {
		label = p.Scheme
	}
	if label == "" {
		label = p.Method
	}
	rc.Totals = []posagent.ReceiptLine{{Label: "Total", Amount: p.Amount}}
	rc.Payments = []posagent.ReceiptLine{{Label: label, Amount: p.Amount}}
	lines := []string{copyName}
	when := p.CreatedAt
	if p.CompletedAt != nil {
		when = *p.CompletedAt
	}
	lines = append(lines, "Date: "+when.Local().Format("2006-01-02 15:04:05"), "Terminal: "+a.cfg.Terminal)
	if p.Sequence > 0 {
		lines = append(lines, fmt.Sprintf("Sale no.: %d", p.Sequence))
	}
	if p.Reference != "" {
		lines = append(lines, "Ref: "+p.Reference)
	}
	if p.Credential != "" {
		lines = append(lines, "Code: "+p.Credential)
	}
	if p.AuthCode != "" {
		lines = append(lines, "Auth code: "+p.AuthCode)
	}
	if p.Offline {
		lines = append(lines, "OFFLINE SALE: it will be confirmed", "with the acquirer later.")
	} else {
		lines = append(lines, "APPROVED "+offline.FormatAmount(p.Amount, cur)+" "+p.Currency)
	}
	rc.Lines = lines
	return rc
}

// printReceipts prints the configured copies of an accepted payment's receipt; a printer
// that cannot print (out of paper at the end of a sale) does not change the sale: the
// payment says the receipt failed, and an event tells the POS app, which can print it
// again with POST /v1/receipts.
func (a *Agent) printReceipts(p *Payment) {
	var copies []string
	if a.cfg.Checkout.MerchantCopy {
		copies = append(copies, "MERCHANT COPY")
	}
	if a.cfg.Checkout.CustomerCopy {
		copies = append(copies, "CUSTOMER COPY")
	}
	if len(copies) == 0 {
		return
	}
	info := &ReceiptInfo{}
	if a.dev.printer == nil {
		info.Error, info.Reason = "no printer configured", "no-printer"
	}
	for _, c := range copies {
		if info.Error != "" {
			break
		}
		ctx, cancel := context.WithTimeout(a.hardCtx, 60*time.Second)
		_, err := a.dev.printer.Print(ctx, a.receipt(a.snapshot(p), c))
		cancel()
		if err != nil {
			info.Error, info.Reason = err.Error(), escpos.Reason(err)
			break
		}
		info.Printed++
	}
	a.mu.Lock()
	p.Receipt = info
	a.mu.Unlock()
	a.savePayment(p)
	a.metrics.receipt(info.Error == "")
	ev := map[string]any{"payment_id": p.ID, "printed": info.Printed, "copies": len(copies)}
	if info.Error != "" {
		ev["error"], ev["reason"] = info.Error, info.Reason
		a.log.Warn("receipt not printed", "payment", p.ID, "err", info.Error)
	}
	a.events.publish("receipt", ev)
}

// printSlip prints the merchant-presented code for the customer to scan.
func (a *Agent) printSlip(p *Payment) {
	rc := &posagent.Receipt{
		Currency: p.Currency, Header: []string{a.cfg.Merchant.Name, "SCAN TO PAY"},
		Totals: []posagent.ReceiptLine{{Label: "Total", Amount: p.Amount}},
		Lines:  []string{"Order: " + p.OrderReference}, QR: p.QR,
	}
	ctx, cancel := context.WithTimeout(a.hardCtx, 60*time.Second)
	defer cancel()
	_, err := a.dev.printer.Print(ctx, rc)
	ev := map[string]any{"payment_id": p.ID, "kind": "qr-slip", "printed": err == nil}
	if err != nil {
		ev["error"], ev["reason"] = err.Error(), escpos.Reason(err)
	}
	a.events.publish("receipt", ev)
}

// declineNotice is the slip printed when an offline sale is declined after upload: the
// goods went out, the money did not come in.
func (a *Agent) declineNotice(r offline.Record, reason string) *posagent.Receipt {
	lines := []string{fmt.Sprintf("Sale no.: %d", r.Sequence), "Captured: " + r.CapturedAt.Local().Format("2006-01-02 15:04:05")}
	if r.Reference != "" {
		lines = append(lines, "Ref: "+r.Reference)
	}
	if r.CredentialMasked != "" {
		lines = append(lines, "Code: "+r.CredentialMasked)
	}
	if reason != "" {
		lines = append(lines, "Reason: "+reason)
	}
	lines = append(lines, "This offline sale was declined.", "The amount was not collected.")
	return &posagent.Receipt{
		Currency: r.Amount.Currency.Code, Header: []string{"PAYMENT DECLINED", "after upload"},
		Totals: []posagent.ReceiptLine{{Label: "Not collected", Amount: r.Amount.Minor}}, Lines: lines,
	}
}
