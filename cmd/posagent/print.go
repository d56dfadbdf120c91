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
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/serial"
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
		port       string
		baud       int
		profile    string
		profileDir string
		timeout    time.Duration
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

--port takes a device path, a name in /dev or /dev/serial/by-id, or USB VID:PID[:SERIAL].`,
		Args: exactArgs(1, "one RECEIPT.json (or - for standard input)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if port == "" {
				return usageError{errors.New("--port is required")}
			}
			if baud < 300 || baud > 921600 {
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
			return m.print(ctx, port, baud, prof, rc)
		},
	}
	f := cmd.Flags()
	f.StringVar(&port, "port", "", "the printer's serial port (path, by-id name or USB VID:PID)")
	f.IntVar(&baud, "baud", 9600, "line speed")
	f.StringVar(&profile, "profile", "generic-58", "printer profile")
	f.StringVar(&profileDir, "profile-dir", "", "directory of printer profiles (NAME.json) that override the built-in ones")
	f.DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
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

func (m *Main) print(ctx context.Context, dev string, baud int, prof *escpos.Profile, rc *posagent.Receipt) error {
	loc, err := serial.ParseLocator(dev)
	if err != nil {
		return usageError{fmt.Errorf("--port: %w", err)}
	}
	port, err := serial.Open(ctx, loc, serial.Options{Baud: baud, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return withHint(fmt.Errorf("open printer port %s: %w", dev, err), "check --port (posagent ports lists them)")
	}
	defer port.Close()

	p := escpos.New(port, prof, escpos.Options{Baud: baud})
	res, err := p.Print(ctx, rc)
	if err != nil {
		if errors.Is(err, posagent.ErrInvalidInput) || errors.Is(err, posagent.ErrUnsupported) {
			return invalid(err)
		}
		return withHint(fmt.Errorf("printer %s: %w", dev, err), printHint(err))
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(m.Stderr, "posagent: warning: %s\n", w)
	}
	return m.writeJSON(printResult{
		Printed: true, Profile: prof.Name, Bytes: res.Bytes, Seconds: res.Elapsed.Round(time.Millisecond).Seconds(),
		Status: res.After.String(), Warnings: res.Warnings,
	})
}

// printHint tells the operator what to do about a failed job.
func printHint(err error) string {
	switch escpos.Reason(err) {
	case "paper-end":
		return "load paper and print again; check the receipt that was printed, if any"
	case "cover-open":
		return "close the printer's cover and print again"
	case "offline":
		if errors.Is(err, escpos.ErrNoAnswer) {
			return "check the printer's power and cable, --port and --baud"
		}
		return "the printer is offline: check it, then print again"
	case "printer-error":
		return "the printer reports an error (cutter jam, overheated head): clear it and print again"
	}
	return "check the printer and its cable"
}
