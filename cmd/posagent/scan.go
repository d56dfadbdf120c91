package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/posagent/posagent/drivers/camera"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/qr"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, (*Main).scanCommand) }

func (m *Main) scanCommand() *cobra.Command {
	var (
		port, suffix, prefix, tablePath string
		baud, count, maxLen             int
		gap, timeout                    time.Duration
		trigger                         bool
		fps                             float64
	)
	cmd := &cobra.Command{
		Use:   "scan --port DEV|hid:…|camera:…|frames:DIR [--baud N] [--suffix cr|lf|crlf|tab|none] [--trigger] [--fps N]",
		Short: "Read codes from the scanner and print each, classified, as one JSON line",
		Long: `Read codes from a serial barcode/QR scanner and print one JSON line per code, the
classification of 'posagent qr classify' (wallet payment codes masked: they are
credentials), until interrupted, --count codes, or --timeout.

Codes are framed by the scanner's suffix (--suffix; "none" ends a code when the line is
quiet for --gap); --prefix is stripped, AIM identifiers ("]Q1") are stripped and shown as
"aim". Line noise, control bytes and frames longer than --max-len are rejected with the
reason on stderr. --trigger sends the serial trigger (SYN T CR) for scanners configured to
scan only on command.

A scanner in USB keyboard (HID) mode is read through Linux evdev with --port
hid:/dev/input/eventN, hid:VID:PID or hid:name=PART-OF-ITS-NAME ('posagent ports' lists
the input devices): it is taken exclusively, so its key presses reach no other program,
its keys are read in the US layout and Enter ends each code (--suffix and --baud do not
apply). Reading input devices needs the input group: usermod -aG input posagent.

A camera reads the customer's code from a screen or paper: --port camera:/dev/videoN or
camera:VID:PID (a V4L2 capture device, a USB UVC camera; needs the video group), or
frames:DIR to replay a recording (the PNG/JPEG files of DIR in name order at --fps). Each
frame goes through the qr decoder, frames are dropped rather than queued while one is
decoded, and a code held in view is reported once.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sfx, err := scanner.ParseSuffix(suffix)
			if err != nil {
				return usageError{err}
			}
			cls := &qr.Classifier{Table: qr.DefaultTable()}
			if tablePath != "" {
				f, err := os.Open(tablePath)
				if err != nil {
					return withHint(fmt.Errorf("open classification table: %w", err), "give the path of a JSON table like qr/table.json")
				}
				defer f.Close()
				if cls.Table, err = qr.LoadTable(f); err != nil {
					return invalid(err)
				}
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			if camera.IsPort(port) { // camera:/dev/videoN, camera:VID:PID, frames:DIR (scan_camera.go)
				return m.scanCamera(ctx, port, fps, count, timeout, cls)
			}
			if ports.KindOf(port) == ports.HID {
				sfx = scanner.SuffixCR // the key decoder ends each code with CR
			}
			p, err := m.openScannerPort(ctx, port, baud)
			if err != nil {
				return err
			}
			defer p.Close()
			sc, err := scanner.New(p, scanner.Config{
				Frame:      scanner.FrameConfig{Suffix: sfx, Prefix: prefix, MaxLen: maxLen},
				Gap:        gap,
				Trigger:    trigger,
				Classifier: cls,
				Logger:     slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
			})
			if err != nil {
				return err
			}
			for n := 0; count == 0 || n < count; n++ {
				s, err := sc.Next(ctx)
				if err != nil {
					if errors.Is(err, context.Canceled) {
						return nil // interrupted: the normal end
					}
					if errors.Is(err, context.DeadlineExceeded) {
						return fmt.Errorf("scan: %d of %d code(s) within %v", n, count, timeout)
					}
					return portError(fmt.Errorf("scan: %w", err))
				}
				var buf bytes.Buffer
				enc := json.NewEncoder(&buf)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(s.Classification); err != nil {
					return err
				}
				if _, err := m.Stdout.Write(buf.Bytes()); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&port, "port", "", "the scanner's port: path, by-id link, VID:PID[:SERIAL], hid:/dev/input/eventN|VID:PID|name=TEXT, or a camera: camera:/dev/videoN, camera:VID:PID, frames:DIR (required)")
	f.Float64Var(&fps, "fps", 15, "camera or frames: recording frame rate (0: play a recording as fast as it decodes, every frame)")
	f.IntVar(&baud, "baud", 9600, "baud rate")
	f.StringVar(&suffix, "suffix", "cr", "what ends each code: cr, lf, crlf, tab or none")
	f.StringVar(&prefix, "prefix", "", "prefix the scanner sends before each code (stripped; required when set)")
	f.IntVar(&maxLen, "max-len", 0, "longest frame accepted, in bytes (default: the largest QR payload)")
	f.DurationVar(&gap, "gap", 80*time.Millisecond, "inter-byte timeout that ends a code (--suffix none) or abandons a partial one")
	f.BoolVar(&trigger, "trigger", false, "send the serial trigger (SYN T CR) and stop it (SYN U CR) at the end")
	f.IntVar(&count, "count", 0, "stop after this many codes (0: until interrupted)")
	f.DurationVar(&timeout, "timeout", 0, "give up after this long (exit 1 if fewer than --count codes came)")
	f.StringVar(&tablePath, "table", "", "classification table (JSON) to use instead of the built-in one")
	cmd.MarkFlagRequired("port")
	return cmd
}
