package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/posagent/posagent/drivers/hid"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/posagent/posagent/configs"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
)

func init() { commands = append(commands, (*Main).portsCommand) }

// listPorts, listUSBPrinters and listInputs are swapped by tests.
var (
	listPorts       = serial.ListPorts
	listUSBPrinters = usblp.List
	listInputs      = hid.List
)

func (m *Main) portsCommand() *cobra.Command {
	var asJSON, probe bool
	cmd := &cobra.Command{
		Use:   "ports [--json] [--probe]",
		Short: "List the serial ports, USB printers and input devices, with the role each would take",
		Long: `List the machine's serial ports: the device node, for USB devices the vendor and
product IDs, serial number, manufacturer and product names and the /dev/serial/by-id
links, and the kernel driver bound to the port (cdc_acm, ftdi_sio, ch341, pl2303, …).

Any of these can be given to --port: the path, the by-id link, or VID:PID[:SERIAL].
Built-in UARTs (ttyS*) are probed by opening them, so do not run this in a loop.

Each USB device is matched against the device table (configs/devices.yaml: known
scanners, printers and displays by VID:PID) and the ROLE column says which role it would
take in the config (devices.printer, .scanner, .display). A known printer is asked DLE EOT
(harmless: it only reports its status); with --probe every port whose role is unknown
(adapters, built-in UARTs) is asked too, and one that answers is a printer.

After the serial ports come the USB printer-class devices (/dev/usb/lp*, from sysfs
/sys/class/usbmisc), listed as usblp:/dev/usb/lpN, each a printer (asked DLE EOT too), and
the input devices (/sys/class/input/event*), listed as hid:/dev/input/eventN: a scanner in
keyboard mode is one of them, role scanner when the device table knows its IDs or its name
says scanner or barcode. The PORT column is what --port and devices.*.port take.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := listPorts()
			if err != nil {
				return fmt.Errorf("list serial ports: %w", err)
			}
			ports = append(ports, otherPorts(m)...)
			table, err := loadDeviceTable()
			if err != nil {
				return err
			}
			found := make([]foundPort, 0, len(ports))
			for _, p := range ports {
				f := foundPort{PortInfo: p, Role: "unknown"}
				if d, ok := table.match(p); ok {
					f.Role, f.Known = d.Role, d.Name
				}
				if f.Role == "printer" || (probe && f.Role == "unknown" && !strings.HasPrefix(p.Name, hid.Prefix)) { // input devices take no DLE EOT
					f.Probe = probePrinter(cmd.Context(), p.Name)
					if f.Role == "unknown" && !strings.HasPrefix(f.Probe, "no answer") && !strings.HasPrefix(f.Probe, "cannot open") {
						f.Role = "printer"
					}
				}
				found = append(found, f)
			}
			if asJSON {
				return m.writeJSON(found)
			}
			if len(ports) == 0 {
				fmt.Fprintln(m.Stderr, "no serial ports, USB printers or input devices found")
				return nil
			}
			tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PORT\tUSB ID\tSERIAL\tDRIVER\tDEVICE\tBY-ID\tROLE\tPROBE")
			for _, f := range found {
				p := f.PortInfo
				id, product := "-", strings.TrimSpace(p.Manufacturer+" "+p.Product)
				if p.IsUSB {
					id = strings.ToLower(p.VID + ":" + p.PID)
				}
				if product == "" {
					product = f.Known
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, id, dash(p.Serial), dash(p.Driver), dash(product), dash(strings.Join(p.ByID, " ")), f.Role, dash(f.Probe))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().BoolVar(&probe, "probe", false, "also ask ports of unknown role DLE EOT (a printer answers)")
	return cmd
}

// foundPort is one line of posagent ports: the port, the role the device table gives it,
// and what a probe found.
type foundPort struct {
	serial.PortInfo
	Role  string `json:"role"`            // printer, scanner, display or unknown
	Known string `json:"known,omitempty"` // the table's name for the device
	Probe string `json:"probe,omitempty"` // the printer's status, "no answer", …
}

// knownDevice is one line of configs/devices.yaml.
type knownDevice struct {
	VID  string `yaml:"vid"`
	PID  string `yaml:"pid"`
	Role string `yaml:"role"`
	Name string `yaml:"name"`
}

type deviceTable struct {
	Devices []knownDevice `yaml:"devices"`
}

func loadDeviceTable() (deviceTable, error) {
	var t deviceTable
	if err := yaml.Unmarshal(configs.Devices, &t); err != nil {
		return t, fmt.Errorf("configs/devices.yaml: %w", err)
	}
	return t, nil
}

func (t deviceTable) match(p serial.PortInfo) (knownDevice, bool) {
	if !p.IsUSB {
		return knownDevice{}, false
	}
	for _, d := range t.Devices {
		if strings.EqualFold(d.VID, p.VID) && strings.EqualFold(d.PID, p.PID) {
			return d, true
		}
	}
	switch {
	case strings.HasPrefix(p.Name, usblp.Prefix): // the USB printer class: a printer whatever its IDs
		return knownDevice{Role: "printer", Name: "USB printer-class device"}, true
	case strings.HasPrefix(p.Name, hid.Prefix):
		if n := strings.ToLower(p.Product); strings.Contains(n, "scanner") || strings.Contains(n, "barcode") || strings.Contains(n, "bar code") {
			return knownDevice{Role: "scanner", Name: "keyboard-mode scanner (by its name)"}, true
		}
	}
	return knownDevice{}, false
}

// otherPorts lists the USB printer-class and input devices as ports: Name is the port
// string (usblp:/dev/usb/lp0, hid:/dev/input/event3). A listing that fails is reported on
// stderr and left out.
func otherPorts(m *Main) []serial.PortInfo {
	var out []serial.PortInfo
	lps, err := listUSBPrinters()
	if err != nil {
		fmt.Fprintf(m.Stderr, "posagent: warning: %v\n", err)
	}
	for _, d := range lps {
		out = append(out, serial.PortInfo{Name: usblp.Prefix + d.Name, IsUSB: d.VID != "", VID: d.VID, PID: d.PID,
			Serial: d.Serial, Manufacturer: d.Manufacturer, Product: d.Product, Driver: "usblp"})
	}
	ins, err := listInputs()
	if err != nil {
		fmt.Fprintf(m.Stderr, "posagent: warning: %v\n", err)
	}
	for _, d := range ins {
		out = append(out, serial.PortInfo{Name: hid.Prefix + d.Name, IsUSB: d.Bus == "usb", VID: d.VID, PID: d.PID,
			Product: d.Product, Driver: "evdev"})
	}
	return out
}

// probeTimeout bounds one DLE EOT probe; tests shorten it.
var probeTimeout = time.Second

// probePrinter asks the port for a printer's status (DLE EOT 1, 2, 4: status requests a
// printer answers without printing anything) and describes the answer.
func probePrinter(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	p, err := defaultDoctor().openPort(ctx, name, 9600)
	rate, chunk := ports.PrinterPacing(name, 9600)
	if err != nil {
		return "cannot open: " + oneLine(err.Error())
	}
	defer p.Close()
	prof, err := escpos.LoadProfile("generic-58", "")
	if err != nil {
		return err.Error()
	}
	st, err := escpos.New(p, prof, escpos.Options{Baud: rate, ChunkSize: chunk}).Status(ctx)
	if err != nil {
		return "no answer to DLE EOT"
	}
	return "printer: " + st.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
