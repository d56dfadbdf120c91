package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
)

func init() { commands = append(commands, (*Main).printCommand) }

// printResult is what posagent print writes on stdout after a job the printer accepted.
type printResult struct {
	Printed  bool     `json:"printed"`
	Profile  string   `json:"profile"`
	Bytes    int      `json:"bytes"`
	Seconds  float64  `json:"seconds"`
	Status   string   `json:"status"`
	Warnings []string `json:"warnings,omitempty"`
}

func (m *Main) printCommand() *cobra.Command {
	var (
		port         string
		baud         int
		profile      string
		profileDir   string
		timeout      time.Duration
		writeTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "print --port DEV [--baud N] [--profile NAME] RECEIPT.json|-",
		Short: "Print a receipt (JSON) on an ESC/POS printer",
		Long: `Print a receipt on an ESC/POS receipt printer on a serial port.

The receipt is the JSON the POS app sends (amounts in minor units, unknown fields
refused); see docs/receipt.md and the sample configs/receipt.json. It is laid out for the printer profile (paper width, Chinese
GB18030 mode, native or raster QR, cutter): ` + strings.Join(escpos.ProfileNames(""), ", ") + `,
or NAME.json in --profile-dir.

The printer's status is read (DLE EOT) before and after the job: a printer out of paper,
with its cover open, offline or not answering refuses the job before anything is sent;
one that runs out during the job fails it. Paper near its end is a warning. On success
a JSON summary is printed.

--port takes a serial port (a device path, a name in /dev or /dev/serial/by-id, or USB
VID:PID[:SERIAL]), a network printer as tcp:HOST[:PORT] (raw ESC/POS, port 9100 by
default; status through the same socket), or a USB printer-class device as
usblp:/dev/usb/lp0 or usblp:VID:PID. --baud applies to serial ports only. A network
printer that takes the connection but no data fails the job after --write-timeout.`,
		Args: exactArgs(1, "one RECEIPT.json (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if port == "" {
				return usageError{errors.New("--port is required")}
			}
			if ports.KindOf(port) == ports.Serial && (baud < 300 || baud > 921600) {
				return usageError{fmt.Errorf("--baud %d is not a serial line speed (300 to 921600)", baud)}
			}
			rc, err := m.readReceipt(args[0])
			if err != nil {
				return err
			}
			prof, err := escpos.LoadProfile(profile, profileDir)
			if err != nil {
				if errors.Is(err, escpos.ErrUnknownProfile) {
					return usageError{err}
				}
				return invalid(err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return m.print(ctx, port, baud, prof, rc, ports.Options{WriteTimeout: writeTimeout})
		},
	}
	f := cmd.Flags()
	f.StringVar(&port, "port", "", "the printer's port: serial (path, by-id name or USB VID:PID), tcp:HOST[:PORT] or usblp:/dev/usb/lpN|VID:PID")
	f.IntVar(&baud, "baud", 9600, "line speed")
	f.StringVar(&profile, "profile", "generic-58", "printer profile")
	f.StringVar(&profileDir, "profile-dir", "", "directory of printer profiles (NAME.json) that override the built-in ones")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	f.DurationVar(&writeTimeout, "write-timeout", 10*time.Second, "tcp:, usblp: a printer that takes no data for this long is reported stalled")
	return cmd
}

// readReceipt reads and validates the receipt from a file or standard input.
func (m *Main) readReceipt(arg string) (*posagent.Receipt, error) {
	var r io.Reader = m.Stdin
	name := "standard input"
	if arg != "-" {
		f, err := os.Open(arg)
		if err != nil {
			return nil, withHint(invalid(fmt.Errorf("open receipt: %w", err)), "check the receipt file's name; configs/receipt.json is a sample")
		}
		defer f.Close()
		r, name = f, arg
	}
	rc, err := posagent.DecodeReceipt(r)
	if err != nil {
		return nil, withHint(invalid(fmt.Errorf("%s: %w", name, err)),
			"fix that field of the receipt JSON: its format is docs/receipt.md, configs/receipt.json is a sample")
	}
	return rc, nil
}

func (m *Main) print(ctx context.Context, dev string, baud int, prof *escpos.Profile, rc *posagent.Receipt, opt ports.Options) error {
	if err := ports.Validate("printer", dev); err != nil {
		return usageError{fmt.Errorf("--port: %w", err)}
	}
	opt.Baud, opt.Logger = baud, slog.New(slog.DiscardHandler)
	port, err := ports.Open(ctx, dev, opt)
	if err != nil {
		return withHint(fmt.Errorf("open printer port %s: %w", dev, err), openHint(err))
	}
	defer port.Close()

	rate, chunk := ports.PrinterPacing(dev, baud)
	p := escpos.New(port, prof, escpos.Options{Baud: rate, ChunkSize: chunk})
	res, err := p.Print(ctx, rc)
	if err != nil {
		if errors.Is(err, posagent.ErrInvalidInput) || errors.Is(err, posagent.ErrUnsupported) {
			return invalid(err)
		}
		hint := printHint(err)
		if ports.KindOf(dev) == ports.TCP && errors.Is(err, escpos.ErrNoAnswer) {
			hint = "the network printer does not answer the status request: check that it is on, that no other client holds it, and the address"
		}
		return withHint(fmt.Errorf("printer %s: %w", dev, err), hint)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(m.Stderr, "posagent: warning: %s\n", w)
	}
	return m.writeJSON(printResult{
		Printed: true, Profile: prof.Name, Bytes: res.Bytes, Seconds: res.Elapsed.Round(time.Millisecond).Seconds(),
		Status: res.After.String(), Warnings: res.Warnings,
	})
}

// openHint tells the operator what to do about a printer port that did not open.
func openHint(err error) string {
	switch {
	case errors.Is(err, usblp.ErrPermission):
		return "add the agent's user to the lp group: usermod -aG lp posagent"
	case errors.Is(err, serial.ErrNotFound):
		return "check --port: 'posagent ports' lists serial and USB printers; a network printer must listen on that address"
	}
	return "check --port (posagent ports lists them)"
}

// printHint tells the operator what to do about a failed job.
func printHint(err error) string {
	switch escpos.Reason(err) {
	case "paper-end":
		return "load paper and print again; check the receipt that was printed, if any"
	case "cover-open":
		return "close the printer's cover and print again"
	case "offline":
		if errors.Is(err, connport.ErrStalled) {
			return "the printer takes the connection but no data: check it for paper and errors, and that no other client holds it"
		}
		if errors.Is(err, escpos.ErrNoAnswer) {
			return "check the printer's power and cable, --port and --baud"
		}
		return "the printer is offline: check it, then print again"
	case "printer-error":
		return "the printer reports an error (cutter jam, overheated head): clear it and print again"
	}
	if errors.Is(err, connport.ErrStalled) {
		return "the printer takes the connection but no data: check it for paper and errors, and that no other client holds it"
	}
	return "check the printer and its cable"
}
