package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/hid"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
	"github.com/posagent/posagent/internal/possim"
)

// TestPorts_Roles matches ports against configs/devices.yaml and probes a printer with
// DLE EOT: the simulator's printer behind a known printer's IDs, and behind an adapter
// with --probe; the simulator's display behind an adapter does not answer.
func TestPorts_Roles(t *testing.T) {
	s := startSim(t)
	defer func(f func() ([]serial.PortInfo, error), d time.Duration) { listPorts, probeTimeout = f, d }(listPorts, probeTimeout)
	probeTimeout = 300 * time.Millisecond
	noOtherPorts(t)
	listPorts = func() ([]serial.PortInfo, error) {
		return []serial.PortInfo{
			{Name: "/dev/ttyACM0", IsUSB: true, VID: "0C2E", PID: "0B61"},
			{Name: s.Path(possim.PrinterName), IsUSB: true, VID: "0416", PID: "5011"},
			{Name: s.Path(possim.DisplayName), IsUSB: true, VID: "067B", PID: "2303"},
		}, nil
	}
	s.Printer.PaperNearEnd(true)
	code, out, stderr := run(t, "", "ports", "--json")
	var got []foundPort
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 3 {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, stderr)
	}
	if got[0].Role != "scanner" || got[0].Probe != "" || !strings.Contains(got[0].Known, "Honeywell") {
		t.Errorf("scanner: %+v", got[0])
	}
	if got[1].Role != "printer" || got[1].Probe != "printer: paper-near-end" {
		t.Errorf("printer: %+v", got[1])
	}
	if got[2].Role != "unknown" || got[2].Probe != "" || !strings.Contains(got[2].Known, "PL2303") {
		t.Errorf("adapter without --probe: %+v", got[2])
	}

	// With --probe an adapter is asked: the display behind it does not answer; the
	// printer behind one is found.
	code, out, _ = run(t, "", "ports", "--probe")
	if code != 0 || !strings.Contains(out, "no answer to DLE EOT") {
		t.Errorf("--probe: exit %d\n%s", code, out)
	}
	listPorts = func() ([]serial.PortInfo, error) {
		return []serial.PortInfo{{Name: s.Path(possim.PrinterName), IsUSB: true, VID: "1A86", PID: "7523"}}, nil
	}
	code, out, _ = run(t, "", "ports", "--probe", "--json")
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 1 || got[0].Role != "printer" {
		t.Errorf("printer behind an adapter: exit %d, %v: %s", code, err, out)
	}
}

// noOtherPorts makes the USB printer and input device listings empty for the test (the
// machine's own devices would change the output).
func noOtherPorts(t *testing.T) {
	t.Helper()
	lp, in := listUSBPrinters, listInputs
	listUSBPrinters = func() ([]usblp.Device, error) { return nil, nil }
	listInputs = func() ([]hid.Device, error) { return nil, nil }
	t.Cleanup(func() { listUSBPrinters, listInputs = lp, in })
}

// TestPorts_USBPrintersAndInputs lists a USB printer-class device (the simulated printer
// behind its node stands in for /dev/usb/lp0, and answers DLE EOT) and input devices, with
// their roles.
func TestPorts_USBPrintersAndInputs(t *testing.T) {
	s := startSim(t)
	defer func(f func() ([]serial.PortInfo, error), d time.Duration) { listPorts, probeTimeout = f, d }(listPorts, probeTimeout)
	probeTimeout = 300 * time.Millisecond
	noOtherPorts(t)
	listPorts = func() ([]serial.PortInfo, error) { return nil, nil }
	listUSBPrinters = func() ([]usblp.Device, error) {
		return []usblp.Device{{Name: s.Path(possim.PrinterName), VID: "0FE6", PID: "811E", Product: "POS58"}}, nil
	}
	listInputs = func() ([]hid.Device, error) {
		return []hid.Device{
			{Name: "/dev/input/event3", Product: "AT Translated Set 2 keyboard", VID: "0001", PID: "0001"},
			{Name: "/dev/input/event7", Product: "Barcode Scanner Keyboard", VID: "FFFF", PID: "0035", Bus: "usb"},
			{Name: "/dev/input/event8", Product: "Symbol Bar Code Scanner", VID: "05E0", PID: "1200", Bus: "usb"},
		}, nil
	}
	code, out, stderr := run(t, "", "ports", "--json", "--probe")
	var got []foundPort
	if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil || len(got) != 4 {
		t.Fatalf("exit %d, %v: %s %s", code, err, out, stderr)
	}
	want := []struct{ name, role, probe string }{
		{"usblp:" + s.Path(possim.PrinterName), "printer", "printer: ready"},
		{"hid:/dev/input/event3", "unknown", ""},
		{"hid:/dev/input/event7", "scanner", ""},
		{"hid:/dev/input/event8", "scanner", ""},
	}
	for i, w := range want {
		if got[i].Name != w.name || got[i].Role != w.role || got[i].Probe != w.probe {
			t.Errorf("port %d = %+v, want name %s role %s probe %q", i, got[i], w.name, w.role, w.probe)
		}
	}
}
