package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/posagent/posagent/drivers/serial"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, (*Main).portsCommand) }

// listPorts is swapped by tests.
var listPorts = serial.ListPorts

func (m *Main) portsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ports [--json]",
		Short: "List the serial ports with their USB IDs and the driver that claims each",
		Long: `List the machine's serial ports: the device node, for USB devices the vendor and
product IDs, serial number, manufacturer and product names and the /dev/serial/by-id
links, and the kernel driver bound to the port (cdc_acm, ftdi_sio, ch341, pl2303, …).

Any of these can be given to --port: the path, the by-id link, or VID:PID[:SERIAL].
Built-in UARTs (ttyS*) are probed by opening them, so do not run this in a loop.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ports, err := listPorts()
			if err != nil {
				return fmt.Errorf("list serial ports: %w", err)
			}
			if ports == nil {
				ports = []serial.PortInfo{}
			}
			if asJSON {
				return m.writeJSON(ports)
			}
			if len(ports) == 0 {
				fmt.Fprintln(m.Stderr, "no serial ports found")
				return nil
			}
			tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PORT\tUSB ID\tSERIAL\tDRIVER\tDEVICE\tBY-ID")
			for _, p := range ports {
				id, product := "-", strings.TrimSpace(p.Manufacturer+" "+p.Product)
				if p.IsUSB {
					id = strings.ToLower(p.VID + ":" + p.PID)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, id, dash(p.Serial), dash(p.Driver), dash(product), dash(strings.Join(p.ByID, " ")))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
