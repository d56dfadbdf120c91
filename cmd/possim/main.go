// Command possim simulates the terminal's peripherals on pseudo-terminals: a receipt
// printer, a barcode/QR scanner and a 2×20 customer display, each behind a link in DIR
// (DIR/printer, DIR/scanner, DIR/display) that posagent opens like a serial port, plus a
// control interface on 127.0.0.1 (its address in DIR/control.addr) to scan codes, read
// the display, set the printer's state and unplug devices. It runs until SIGINT/SIGTERM.
//
//	possim --dir /tmp/sim
//	posagent display --port /tmp/sim/display "TOTAL" "CNY 12.50"
//	curl -d '{"code":"134567890123456789","aim":"]Q1"}' http://$(cat /tmp/sim/control.addr)/scanner/scan
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/posagent/posagent/internal/possim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("possim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the device links and control.addr (created if missing)")
	listen := fs.String("listen", "127.0.0.1:0", "address of the control interface")
	paper := fs.Int("paper-dots", 576, "printer paper width in dots: 576 for 80 mm, 384 for 58 mm")
	profile := fs.String("printer-profile", "", "printer model: a profile name (generic-58, xprinter-xp58, …) or FILE.json; sets the paper width unless --paper-dots is given, and Chinese mode at power-on")
	tcpPrinter := fs.String("tcp-printer", "", "also serve the printer on this TCP address (127.0.0.1:0 for a free port), as a network printer")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: possim --dir DIR [--listen 127.0.0.1:PORT] [--paper-dots 576|384] [--printer-profile NAME] [--tcp-printer 127.0.0.1:PORT]")
		fs.PrintDefaults()
		fmt.Fprint(stderr, controlHelp)
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *dir == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "possim: --dir DIR is required and nothing else (hint: possim --dir /tmp/sim)")
		return 2
	}
	if *paper < 96 || *paper > 2048 || *paper%8 != 0 {
		fmt.Fprintf(stderr, "possim: --paper-dots %d must be a multiple of 8 from 96 to 2048 (hint: 576 for 80 mm, 384 for 58 mm)\n", *paper)
		return 2
	}
	var pp *possim.PrinterProfile
	if *profile != "" {
		var err error
		if pp, err = possim.LoadPrinterProfile(*profile); err != nil {
			fmt.Fprintf(stderr, "possim: %v (hint: --printer-profile generic-80)\n", err)
			return 2
		}
	}
	sim, err := possim.New(*dir)
	if err != nil {
		fmt.Fprintf(stderr, "possim: %v\n", err)
		return 1
	}
	sim.Printer.WidthDots = *paper
	if pp != nil {
		sim.Printer.SetProfile(pp)
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "paper-dots" {
				sim.Printer.WidthDots = *paper
			}
		})
	}
	if *tcpPrinter != "" {
		if sim.TCPPrinter, err = possim.NewTCPPrinter(sim.Printer, *tcpPrinter); err != nil {
			fmt.Fprintf(stderr, "possim: %v (hint: --tcp-printer 127.0.0.1:0 picks a free port)\n", err)
			return 1
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan string, 1)
	ctlErr := make(chan error, 1)
	go func() { ctlErr <- sim.Control(ctx, *listen, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-ctlErr:
		cancel()
		sim.Run(ctx)
		fmt.Fprintf(stderr, "possim: %v\n", err)
		return 1
	}
	for _, n := range sim.Names() {
		fmt.Fprintf(stdout, "%-8s %s -> %s\n", n, sim.Path(n), sim.TTY(n))
	}
	if sim.TCPPrinter != nil {
		fmt.Fprintf(stdout, "%-8s tcp:%s\n", "tcp", sim.TCPPrinter.Addr())
	}
	fmt.Fprintf(stdout, "control  http://%s/ (address in %s/%s)\n", addr, *dir, possim.ControlAddrFile)
	sim.Run(ctx)
	<-ctlErr
	return 0
}

// controlHelp documents the control API (internal/possim control.go) in --help.
const controlHelp = `
Control API: HTTP on --listen, its address in DIR/control.addr; JSON in and out, names in
snake_case; errors are {"error": "..."} with a 4xx status.
  GET  /                    the devices: {"printer": {"link", "tty", "plugged", "plugs"}, ...}
  POST /scanner/scan        {"code": "134567890123456789", "aim": "]Q1", "suffix": "\r",
                             "prefix": "", "chunk": 0, "gap_ms": 0}: the scanner sends a code
  POST /scanner/noise       {"bytes": 16, "suffix": "\r"}: random bytes, as a bad read
  GET  /scanner             {"triggers": N}: trigger commands received
  GET  /display             {"lines": ["...", "..."], "brightness": N, "text": "..."}
  POST /printer/state       {"state": "paper-out", "on": true}; states: paper-near-end,
                            paper-out, offline, cover-open, silent (no DLE EOT answer), ok
  GET  /printer/jobs        {"jobs": [{"n", "lines", "qr", "rasters", "cuts", "drawer",
                             "truncated", "stopped", "overflow", "bold", "tall", "spans",
                             "barcodes": [{"type", "data", "hri", "x", "y", "width", "height"}],
                             "images": [{"kind", "x", "y", "width", "height", "qr"}],
                             "unknown", "text", "bytes"}, ...]}
  POST /DEVICE/unplug       {"down_ms": 500}: unplugged, back after down_ms (-1: until plug)
  POST /DEVICE/plug         plug DEVICE (printer, scanner, display or led8) back in
  GET  /led8                {"value": "12.50", "lamp": "off|price|total|collect|change"}
  GET  /tcp-printer         {"addr", "up", "stalled"} (with --tcp-printer)
  POST /tcp-printer/down    the network printer goes away; /tcp-printer/up brings it back
  POST /tcp-printer/stall   {"on": true}: accept connections, never read them
Example:
  curl -s -d '{"code":"134567890123456789","aim":"]Q1"}' "http://$(cat DIR/control.addr)/scanner/scan"
`
