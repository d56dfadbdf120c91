package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/hid"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, (*Main).displayCommand) }

func (m *Main) displayCommand() *cobra.Command {
	var (
		port, protocol string
		baud           int
		brightness     int
	)
	cmd := &cobra.Command{
		Use:   "display --port DEV [--baud N] [--protocol cd5220|epson|led8] LINE1 [LINE2]",
		Short: "Show two lines of text on the customer display",
		Long: `Show one or two lines on a 2×20 customer display (pole display), or a number and a
lamp on an 8-digit LED price display (--protocol led8).

Each line is fitted to 20 characters: characters the display cannot show become '?',
longer text is cut at a word and marked with "..". The display is reset first.

On an led8 display the lines are read as the checkout screens are: LINE1 names the lamp
(TOTAL, PRICE, APPROVED for collect, CHANGE; anything else clears the display) and the
last number of LINE2 (or of LINE1) is shown, e.g.
  posagent display --port /dev/ttyUSB0 --baud 2400 --protocol led8 TOTAL 12.50

DEV is a device path (/dev/ttyUSB0), a /dev/serial/by-id link, a possim link, a USB
device as VID:PID[:SERIAL] (see 'posagent ports'), or a network display as tcp:HOST:PORT.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("%s takes LINE1 and an optional LINE2, got %d argument(s)", cmd.CommandPath(), len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			proto, err := display.ParseProtocol(protocol)
			if err != nil {
				return usageError{err}
			}
			p, err := m.openPort(cmd.Context(), "display", port, baud)
			if err != nil {
				return err
			}
			defer p.Close()
			d, err := display.New(p, proto)
			if err != nil {
				return err
			}
			screen := display.Screen{args[0]}
			if len(args) == 2 {
				screen[1] = args[1]
			}
			if err := d.Init(); err != nil {
				return portError(err)
			}
			if brightness != 0 {
				if err := d.Brightness(brightness); err != nil {
					return usageError{err}
				}
			}
			if err := d.Show(screen); err != nil {
				return portError(err)
			}
			if err := drain(p); err != nil {
				return portError(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "the display's port: path, by-id link, VID:PID[:SERIAL] or tcp:HOST:PORT (required)")
	cmd.Flags().IntVar(&baud, "baud", 9600, "baud rate")
	cmd.Flags().StringVar(&protocol, "protocol", "cd5220", "command set: cd5220, epson or led8 (8-digit LED price display)")
	cmd.Flags().IntVar(&brightness, "brightness", 0, "brightness 1 (dim) to 4; unchanged if not given")
	cmd.MarkFlagRequired("port")
	return cmd
}

// openPort opens a port for a command (serial, tcp: or usblp:; see drivers/ports):
// locator errors are usage errors, a device that is not there is a failure with a hint.
func (m *Main) openPort(ctx context.Context, role, port string, baud int) (ports.Port, error) {
	if err := ports.Validate(role, port); err != nil {
		return nil, usageError{err}
	}
	if baud <= 0 {
		return nil, usageError{fmt.Errorf("--baud %d: want a positive baud rate", baud)}
	}
	p, err := ports.Open(ctx, port, ports.Options{Baud: baud, Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		if errors.Is(err, posagent.ErrInvalidInput) {
			return nil, usageError{err}
		}
		return nil, portError(fmt.Errorf("open port: %w", err))
	}
	return p, nil
}

// openScannerPort opens a scanner's port for a command: a serial line, or a keyboard-mode
// scanner (hid:…), whose decoder ends each code with CR.
func (m *Main) openScannerPort(ctx context.Context, port string, baud int) (ports.Port, error) {
	if ports.KindOf(port) != ports.HID {
		return m.openPort(ctx, "scanner", port, baud)
	}
	if err := ports.Validate("scanner", port); err != nil {
		return nil, usageError{err}
	}
	p, err := ports.OpenScanner(ctx, port, ports.Options{Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, portError(fmt.Errorf("open scanner: %w", err))
	}
	return p, nil
}

// portError adds the hint an operator needs to a port failure.
func portError(err error) error {
	switch {
	case errors.Is(err, serial.ErrNotFound):
		return withHint(err, "check the cable and the device path; 'posagent ports' lists the serial ports, USB printers and input devices")
	case errors.Is(err, hid.ErrPermission):
		return withHint(err, hid.PermissionHint)
	case errors.Is(err, usblp.ErrPermission):
		return withHint(err, "add the agent's user to the lp group: usermod -aG lp posagent")
	case errors.Is(err, connport.ErrStalled):
		return withHint(err, "the printer takes the connection but no data: check it for paper, errors or another client holding it")
	case errors.Is(err, serial.ErrDisconnected):
		return withHint(err, "the device was unplugged; plug it in and try again")
	}
	return err
}
