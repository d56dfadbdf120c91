package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/qr"
)

func init() { commands = append(commands, (*Main).devTestCommand) }

// devTestFlags are the flags every `posagent test` subcommand shares: the devices come
// from the agent's config, and --port/--baud override the one under test.
type devTestFlags struct {
	config string
	port   string
	baud   int
}

func (f *devTestFlags) devices() (device.DevicesConfig, error) {
	cfg := device.DefaultConfig()
	if f.config != "" {
		c, err := loadConfig(f.config)
		if err != nil {
			return cfg.Devices, withHint(invalid(err), "run 'posagent doctor --config "+f.config+"'")
		}
		cfg = c
	}
	return cfg.Devices, nil
}

// pick returns the port and baud to use: the flags, else the config's.
func (f *devTestFlags) pick(name, port string, baud int) (string, int, error) {
	if f.port != "" {
		port = f.port
	}
	if f.baud != 0 {
		baud = f.baud
	}
	if port == "" {
		return "", 0, usageError{fmt.Errorf("no %s: give --port, or --config with devices.%s.port", name, name)}
	}
	return port, baud, nil
}

func (m *Main) devTestCommand() *cobra.Command {
	f := &devTestFlags{}
	cmd := &cobra.Command{
		Use:   "test print|display|scan [--config FILE] [--port DEV]",
		Short: "Test a device: print a test page, show a display pattern, read a scan",
		Long: `test exercises one device, as configured in --config (or POSAGENT_CONFIG), or on
--port: 'test print' prints a test page (a QR code, Chinese text and a width ruler for the
printer profile), 'test display' shows a pattern on the customer display, 'test scan'
waits for a code ("scan anything") and shows what was read and how it was classified.

Stop the agent first (systemctl stop posagent): it holds the devices.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.config, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config (env POSAGENT_CONFIG)")
	pf.StringVar(&f.port, "port", "", "the device's port, instead of the config's")
	pf.IntVar(&f.baud, "baud", 0, "line speed, instead of the config's")
	cmd.AddCommand(m.testPrintCommand(f), m.testDisplayCommand(f), m.testScanCommand(f))
	return cmd
}

// rulerLine is "1234567890" repeated over n columns, with the tens marked: the last digit
// printed is the profile's width.
func rulerLine(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		b.WriteByte(byte('0' + i%10))
	}
	return b.String()
}

// testPage is the test receipt for a printer profile.
func testPage(prof *escpos.Profile, now time.Time) *posagent.Receipt {
	return &posagent.Receipt{
		Currency: "CNY",
		Header:   []string{"POSAGENT TEST PAGE", now.UTC().Format("2006-01-02 15:04:05Z")},
		Lines: []string{
			fmt.Sprintf("profile %s: %d columns, %d dots", prof.Name, prof.Columns, prof.WidthDots),
			rulerLine(prof.Columns),
			strings.Repeat("-", prof.Columns),
			"中文测试：收银台 ¥12.50 谢谢光临",
			"ASCII: ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789",
		},
		QR:     "posagent test " + now.UTC().Format(time.RFC3339),
		Footer: []string{"the ruler ends at the right edge", "the QR code scans"},
	}
}

func (m *Main) testPrintCommand(f *devTestFlags) *cobra.Command {
	var profile string
	cmd := &cobra.Command{
		Use:   "print",
		Short: "Print a test page: QR code, Chinese text, the profile's width ruler",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			devs, err := f.devices()
			if err != nil {
				return err
			}
			port, baud, err := f.pick("printer", devs.Printer.Port, devs.Printer.Baud)
			if err != nil {
				return err
			}
			if profile == "" {
				profile = devs.Printer.Profile
			}
			prof, err := escpos.LoadProfile(profile, devs.Printer.ProfileDir)
			if err != nil {
				return usageError{err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			return m.print(ctx, port, baud, prof, testPage(prof, time.Now()), ports.Options{})
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "", "printer profile, instead of the config's (default generic-58)")
	return cmd
}

// displayPattern is what 'test display' shows: every column filled, then a ruler.
func displayPattern() display.Screen {
	return display.Screen{strings.Repeat("*", 20), rulerLine(20)}
}

func (m *Main) testDisplayCommand(f *devTestFlags) *cobra.Command {
	var protocol string
	cmd := &cobra.Command{
		Use:   "display",
		Short: "Show a test pattern on the customer display",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			devs, err := f.devices()
			if err != nil {
				return err
			}
			port, baud, err := f.pick("display", devs.Display.Port, devs.Display.Baud)
			if err != nil {
				return err
			}
			if protocol == "" {
				protocol = devs.Display.Protocol
			}
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
			screen := displayPattern()
			for _, err := range []error{d.Init(), d.Show(screen), drain(p)} {
				if err != nil {
					return portError(err)
				}
			}
			fmt.Fprintf(m.Stdout, "display %s shows:\n  [%s]\n  [%s]\nevery cell lit on the first line, 1 to 0 twice on the second\n", port, screen[0], screen[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&protocol, "protocol", "", "cd5220, epson or led8, instead of the config's")
	return cmd
}

// scanReport is what 'test scan' prints for each code read.
type scanReport struct {
	Read           string            `json:"read"`
	Length         int               `json:"length"`
	Classification qr.Classification `json:"classification"`
}

func (m *Main) testScanCommand(f *devTestFlags) *cobra.Command {
	var (
		timeout time.Duration
		asJSON  bool
	)
	cmd := &cobra.Command{
		Use:   "scan",
		Short: `"Scan anything": show what the scanner read and how it was classified`,
		Long: `Waits for one code from the scanner and shows what was read and what the agent
makes of it (a wallet payment code, a merchant-presented QR code, unknown). It prints the
code itself: use a test code, not a customer's.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			devs, err := f.devices()
			if err != nil {
				return err
			}
			port, baud, err := f.pick("scanner", devs.Scanner.Port, devs.Scanner.Baud)
			if err != nil {
				return err
			}
			sfx, err := scanner.ParseSuffix(devs.Scanner.Suffix)
			if err != nil {
				return usageError{err}
			}
			if ports.KindOf(port) == ports.HID {
				sfx = scanner.SuffixCR // the key decoder ends each code with CR
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			p, err := m.openScannerPort(ctx, port, baud)
			if err != nil {
				return err
			}
			defer p.Close()
			sc, err := scanner.New(p, scanner.Config{
				Frame:      scanner.FrameConfig{Suffix: sfx, Prefix: devs.Scanner.Prefix},
				Classifier: &qr.Classifier{Table: qr.DefaultTable()},
				Logger:     slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stderr, "scan anything on %s (within %v)\n", port, timeout)
			s, err := sc.Next(ctx)
			if errors.Is(err, context.DeadlineExceeded) {
				return withHint(fmt.Errorf("nothing scanned within %v", timeout),
					"check the scanner's suffix (devices.scanner.suffix) and baud; a scanner in keyboard (HID) mode is read with --port hid:VID:PID (posagent ports lists input devices)")
			}
			if err != nil {
				return portError(fmt.Errorf("scan: %w", err))
			}
			rep := scanReport{Read: s.Code, Length: len(s.Code), Classification: s.Classification}
			if asJSON {
				return m.writeJSON(rep)
			}
			cls, _ := json.Marshal(s.Classification)
			fmt.Fprintf(m.Stdout, "read %q (%d bytes)\nclassified as %s\n", s.Code, len(s.Code), cls)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "give up after this long")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// drain waits until a serial line has sent what was written; other transports write
// synchronously.
func drain(p ports.Port) error {
	if dr, ok := p.(interface{ Drain() error }); ok {
		return dr.Drain()
	}
	return nil
}
