// Package ports opens "a port" from the string in the config or on the command line, so
// that the printer, scanner and display drivers work over every transport a counter uses:
//
//	/dev/ttyUSB0, usb-…-if00, 0c2e:0b61[:SERIAL]   a serial line (drivers/serial), the default
//	tcp:HOST[:PORT]                                 a network printer, port 9100 by default (drivers/netport)
//	usblp:/dev/usb/lp0, usblp:VID:PID               a USB printer-class device (drivers/usblp)
//	hid:/dev/input/eventN, hid:VID:PID, hid:name=…  a keyboard-mode scanner (drivers/hid; OpenScanner only)
//
// Every Port keeps drivers/serial.Port's contract (reads with a timeout return 0, nil; a
// device that is away fails writes with serial.ErrDisconnected and reconnects on its own;
// connection changes are serial.Events), so drivers/escpos and drivers/display take any of
// them.
package ports

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/hid"
	"github.com/posagent/posagent/drivers/netport"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
)

// Kind is a transport.
type Kind string

const (
	Serial Kind = "serial"
	TCP    Kind = "tcp"
	USBLP  Kind = "usblp"
	HID    Kind = "hid"
)

// KindOf says which transport a port string names (by its prefix; serial without one).
func KindOf(s string) Kind {
	s = strings.TrimSpace(s)
	switch {
	case strings.HasPrefix(s, netport.Prefix):
		return TCP
	case strings.HasPrefix(s, usblp.Prefix):
		return USBLP
	case strings.HasPrefix(s, hid.Prefix):
		return HID
	}
	return Serial
}

// Paced reports whether the transport is a serial line, whose writes the printer driver
// must pace at the line rate; TCP and USB have flow control of their own.
func (k Kind) Paced() bool { return k == Serial }

// Port is what the drivers use of a port of any transport.
type Port interface {
	io.ReadWriteCloser
	SetReadTimeout(time.Duration) error
	Connected() bool
	WaitConnected(ctx context.Context) error
	Name() string
}

var (
	_ Port = (*serial.Port)(nil)
	_ Port = (*connport.Port)(nil)
	_ Port = (*hid.Source)(nil)
)

// Options configure a port; the fields that do not apply to a transport are ignored.
type Options struct {
	Baud          int           // serial line speed; 0 means 9600
	WriteTimeout  time.Duration // tcp, usblp: a peer that takes nothing for this long is stalled; 0 means 10 s
	DialTimeout   time.Duration // tcp: connect timeout; 0 means 5 s
	WaitForDevice bool          // open succeeds while the device is away
	Watch         time.Duration // serial: how often an idle port checks its device node is there (serial.Options.Watch)
	OnEvent       func(serial.Event)
	Logger        *slog.Logger
}

// Validate checks the form of a port string for a role ("scanner", "printer", "display")
// without opening anything. The error is of kind posagent.ErrInvalidInput.
func Validate(role, s string) error {
	var err error
	switch k := KindOf(s); k {
	case TCP:
		if role == "scanner" {
			return posagent.Invalidf("%s port %q: tcp: is for printers", role, s)
		}
		_, err = netport.ParseAddr(s)
	case USBLP:
		if role != "printer" {
			return posagent.Invalidf("%s port %q: usblp: is for printers", role, s)
		}
		_, err = usblp.ParseLocator(s)
	case HID:
		if role != "scanner" {
			return posagent.Invalidf("%s port %q: hid: is for scanners", role, s)
		}
		_, err = hid.ParseLocator(s)
	default:
		_, err = serial.ParseLocator(s)
	}
	return err
}

// Open opens a printer's or display's port: serial, tcp: or usblp:. A hid: string is
// refused (see OpenScanner).
func Open(ctx context.Context, s string, opt Options) (Port, error) {
	cp := connport.Options{WriteTimeout: opt.WriteTimeout, DialTimeout: opt.DialTimeout,
		WaitForDevice: opt.WaitForDevice, OnEvent: opt.OnEvent, Logger: opt.Logger}
	switch KindOf(s) {
	case TCP:
		p, err := netport.Open(ctx, s, cp)
		if err != nil {
			return nil, err
		}
		return p, nil
	case USBLP:
		l, err := usblp.ParseLocator(s)
		if err != nil {
			return nil, err
		}
		p, err := usblp.Open(ctx, l, cp)
		if err != nil {
			return nil, err
		}
		return p, nil
	case HID:
		return nil, posagent.Invalidf("port %q: hid: is a keyboard-mode scanner, not a printer or display port", s)
	}
	loc, err := serial.ParseLocator(s)
	if err != nil {
		return nil, err
	}
	p, err := serial.Open(ctx, loc, serial.Options{Baud: opt.Baud, WaitForDevice: opt.WaitForDevice, Watch: opt.Watch, OnEvent: opt.OnEvent, Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// OpenScanner opens a scanner's port: hid: gives a decoding source whose bytes are
// "CODE\r" (frame it with the CR suffix: see ScannerSuffix), anything else a serial line.
func OpenScanner(ctx context.Context, s string, opt Options) (Port, error) {
	if KindOf(s) == HID {
		l, err := hid.ParseLocator(s)
		if err != nil {
			return nil, err
		}
		src, err := hid.Open(ctx, l, hid.Options{WaitForDevice: opt.WaitForDevice, OnEvent: opt.OnEvent, Logger: opt.Logger})
		if err != nil {
			return nil, err
		}
		return src, nil
	}
	if k := KindOf(s); k != Serial {
		return nil, posagent.Invalidf("scanner port %q: %s: is for printers", s, k)
	}
	return Open(ctx, s, opt)
}

// PrinterPacing returns the escpos pacing for a printer on port s: the line rate for a
// serial line (baud), and for TCP and USB, which have flow control of their own, a rate
// so high that the driver never waits (writes block on the transport instead).
func PrinterPacing(s string, baud int) (rate, chunk int) {
	if KindOf(s).Paced() {
		return baud, 0
	}
	return 100_000_000, 4096
}

// Describe names the transport for messages: "tcp printer 10.0.0.5:9100".
func Describe(s string) string {
	return fmt.Sprintf("%s %s", KindOf(s), strings.TrimSpace(s))
}
