package serial

import (
	"os"
	"path/filepath"
	"sort"

	"go.bug.st/serial/enumerator"
)

// PortInfo describes one serial port of the machine.
type PortInfo struct {
	Name         string   `json:"name"` // device node, /dev/ttyUSB0
	IsUSB        bool     `json:"usb"`
	VID          string   `json:"vid,omitempty"` // four uppercase hex digits
	PID          string   `json:"pid,omitempty"`
	Serial       string   `json:"serial,omitempty"`
	Manufacturer string   `json:"manufacturer,omitempty"`
	Product      string   `json:"product,omitempty"`
	Driver       string   `json:"driver,omitempty"` // the kernel driver bound to it: cdc_acm, ftdi_sio, ch341, pl2303, …
	ByID         []string `json:"by_id,omitempty"`  // the /dev/serial/by-id links to it
}

// ListPorts lists the serial ports with their USB details, through go.bug.st/serial's
// enumerator. On Linux the enumerator opens every ttyS* node to see whether a UART is
// behind it, so this is for a look-up now and then (a command, a reconnect after backoff),
// never for polling.
func ListPorts() ([]PortInfo, error) {
	list, err := enumerator.GetDetailedPortsList()
	if err != nil {
		return nil, err
	}
	links := byIDLinks(ByIDDir)
	out := make([]PortInfo, 0, len(list))
	for _, d := range list {
		if d.Name == "" {
			continue
		}
		out = append(out, PortInfo{
			Name: d.Name, IsUSB: d.IsUSB, VID: d.VID, PID: d.PID, Serial: d.SerialNumber,
			Manufacturer: d.Manufacturer, Product: d.Product,
			Driver: kernelDriver(d.Name), ByID: links[d.Name],
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// kernelDriver reads the name of the driver bound to a tty from sysfs, "" if none.
func kernelDriver(dev string) string {
	target, err := filepath.EvalSymlinks(filepath.Join("/sys/class/tty", filepath.Base(dev), "device", "driver"))
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// byIDLinks maps device nodes to the links in dir that point at them.
func byIDLinks(dir string) map[string][]string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	m := make(map[string][]string)
	for _, e := range entries {
		link := filepath.Join(dir, e.Name())
		if target, err := filepath.EvalSymlinks(link); err == nil {
			m[target] = append(m[target], link)
		}
	}
	return m
}
