package usblp_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/drivers/usblp"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

func TestParseLocator(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want usblp.Locator
	}{
		{"usblp:/dev/usb/lp0", usblp.Locator{Path: "/dev/usb/lp0"}},
		{"usblp:lp1", usblp.Locator{Path: "/dev/usb/lp1"}},
		{"usblp:0fe6:811e", usblp.Locator{VID: "0FE6", PID: "811E"}},
		{"/tmp/x/../lp", usblp.Locator{Path: "/tmp/lp"}},
	} {
		got, err := usblp.ParseLocator(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLocator(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"usblp:", "usblp:0fe6:811", "usblp:a:b:c"} {
		if _, err := usblp.ParseLocator(in); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("ParseLocator(%q) = %v, want an invalid-input error", in, err)
		}
	}
}

// fakeSysfs builds /sys/class/usbmisc/lpN -> …/usbmisc/lpN with device -> the USB
// interface, whose parent holds idVendor and idProduct, as the kernel lays it out.
func fakeSysfs(t *testing.T, printers map[string][2]string) {
	t.Helper()
	root := t.TempDir()
	old := usblp.SysfsRoot
	usblp.SysfsRoot = root
	t.Cleanup(func() { usblp.SysfsRoot = old })
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	i := 0
	for lp, ids := range printers {
		i++
		usb := filepath.Join(root, "devices", "pci0000:00", "usb1", "1-"+string(rune('0'+i)))
		intf := filepath.Join(usb, "1-"+string(rune('0'+i))+":1.0")
		node := filepath.Join(intf, "usbmisc", lp)
		must(os.MkdirAll(node, 0o755))
		must(os.WriteFile(filepath.Join(usb, "idVendor"), []byte(ids[0]+"\n"), 0o644))
		must(os.WriteFile(filepath.Join(usb, "idProduct"), []byte(ids[1]+"\n"), 0o644))
		must(os.WriteFile(filepath.Join(usb, "product"), []byte("Receipt Printer "+lp+"\n"), 0o644))
		must(os.Symlink(intf, filepath.Join(node, "device")))
		must(os.MkdirAll(filepath.Join(root, "class", "usbmisc"), 0o755))
		must(os.Symlink(node, filepath.Join(root, "class", "usbmisc", lp)))
	}
}

func TestList(t *testing.T) {
	fakeSysfs(t, map[string][2]string{"lp0": {"0fe6", "811e"}, "lp1": {"0416", "5011"}})
	got, err := usblp.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []usblp.Device{
		{Name: "/dev/usb/lp0", VID: "0FE6", PID: "811E", Product: "Receipt Printer lp0"},
		{Name: "/dev/usb/lp1", VID: "0416", PID: "5011", Product: "Receipt Printer lp1"},
	}
	if len(got) != len(want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("List[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestOpen_VIDPIDNotFound(t *testing.T) {
	fakeSysfs(t, map[string][2]string{"lp0": {"0fe6", "811e"}})
	_, err := usblp.Open(context.Background(), usblp.Locator{VID: "0416", PID: "5011"}, connport.Options{})
	if !errors.Is(err, serial.ErrNotFound) {
		t.Fatalf("Open of an absent printer = %v, want ErrNotFound", err)
	}
}

// TestPrint_USBLP prints through the usblp transport on a pty standing in for
// /dev/usb/lp0: the job is written to the device and the status answers (DLE EOT) are read
// back from the same descriptor, with the driver's read timeouts.
func TestPrint_USBLP(t *testing.T) {
	sim, path := possimtest.Printer(t, 576)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	port, err := ports.Open(ctx, usblp.Prefix+path, ports.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer port.Close()
	prof, err := escpos.LoadProfile("generic-80", "")
	if err != nil {
		t.Fatal(err)
	}
	rate, chunk := ports.PrinterPacing(usblp.Prefix+path, 9600)
	pr := escpos.New(port, prof, escpos.Options{Baud: rate, ChunkSize: chunk})

	st, err := pr.Status(ctx)
	if err != nil || st.Err() != nil {
		t.Fatalf("Status = %v, %v; want a printer ready", st, err)
	}
	rc := &posagent.Receipt{
		Currency: "CNY", Header: []string{"USB SHOP"},
		Items:    []posagent.ReceiptItem{{Name: "Tea", Quantity: 1, UnitPrice: 900, Amount: 900}},
		Totals:   []posagent.ReceiptLine{{Label: "Total", Amount: 900}},
		Payments: []posagent.ReceiptLine{{Label: "Cash", Amount: 900}},
	}
	if _, err := pr.Print(ctx, rc); err != nil {
		t.Fatalf("Print: %v", err)
	}
	job, err := sim.WaitJob(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(job.Lines, "\n"); !strings.Contains(got, "USB SHOP") || !strings.Contains(got, "Tea") {
		t.Errorf("printed:\n%s\nwant the header and the item", got)
	}

	sim.CoverOpen(true)
	if _, err := pr.Print(ctx, rc); !errors.Is(err, escpos.ErrCoverOpen) {
		t.Errorf("Print with the cover open = %v, want ErrCoverOpen", err)
	}
}

// TestRead_USBLPTimeout: a read with a timeout on a device that sends nothing returns 0, nil.
func TestRead_USBLPTimeout(t *testing.T) {
	sim, path := possimtest.Printer(t, 576)
	sim.Silent(true)
	port, err := usblp.Open(context.Background(), usblp.Locator{Path: path}, connport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer port.Close()
	if err := port.SetReadTimeout(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := port.Write([]byte{0x10, 0x04, 0x01}); err != nil {
		t.Fatal(err)
	}
	var buf [8]byte
	n, err := port.Read(buf[:])
	if n != 0 || err != nil {
		t.Fatalf("Read from a silent printer = %d, %v; want 0, nil", n, err)
	}
}
