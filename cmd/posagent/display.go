package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/serial"
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
		Use:   "display --port DEV [--baud N] [--protocol cd5220|epson] LINE1 [LINE2]",
		Short: "Show two lines of text on the customer display",
		Long: `Show one or two lines on a 2×20 customer display (pole display).

Each line is fitted to 20 characters: characters the display cannot show become '?',
longer text is cut at a word and marked with "..". The display is reset first.

DEV is a device path (/dev/ttyUSB0), a /dev/serial/by-id link, a possim link, or a USB
device as VID:PID[:SERIAL] (see 'posagent ports').`,
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
			p, err := m.openPort(cmd.Context(), port, baud)
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
			if err := p.Drain(); err != nil {
				return portError(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&port, "port", "", "the display's serial port: path, by-id link or VID:PID[:SERIAL] (required)")
	cmd.Flags().IntVar(&baud, "baud", 9600, "baud rate")
	cmd.Flags().StringVar(&protocol, "protocol", "cd5220", "command set: cd5220 or epson")
	cmd.Flags().IntVar(&brightness, "brightness", 0, "brightness 1 (dim) to 4; unchanged if not given")
	cmd.MarkFlagRequired("port")
	return cmd
}

// openPort opens a serial port for a command: locator errors are usage errors, a device
// that is not there is a failure with a hint.
func (m *Main) openPort(ctx context.Context, port string, baud int) (*serial.Port, error) {
	loc, err := serial.ParseLocator(port)
	if err != nil {
		return nil, usageError{err}
	}
	if baud <= 0 {
		return nil, usageError{fmt.Errorf("--baud %d: want a positive baud rate", baud)}
	}
	p, err := serial.Open(ctx, loc, serial.Options{Baud: baud, Logger: slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return nil, portError(fmt.Errorf("open port: %w", err))
	}
	return p, nil
}

// portError adds the hint an operator needs to a port failure.
func portError(err error) error {
	switch {
	case errors.Is(err, serial.ErrNotFound):
		return withHint(err, "check the cable and the device path; 'posagent ports' lists the serial ports")
	case errors.Is(err, serial.ErrDisconnected):
		return withHint(err, "the device was unplugged; plug it in and try again")
	}
	return err
}
