// Package usblp is the USB printer-class transport: the kernel's usblp driver gives each
// USB printer a character device, /dev/usb/lp0, lp1, … Jobs are written to it and, on
// printers with a bidirectional interface, status answers (DLE EOT) are read back from the
// same descriptor, with a read timeout (the descriptor is in Go's poller, so deadlines
// work and Close interrupts a blocked read).
//
// A printer is named by its device node or by USB VID:PID, looked up in sysfs
// (/sys/class/usbmisc/lp*/device/../idVendor, idProduct) at every (re)connect, so a printer
// that comes back as lp1 after a replug is found again.
package usblp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/serial"
)

// Prefix starts a USB printer-class port string: usblp:/dev/usb/lp0 or usblp:VID:PID.
const Prefix = "usblp:"

// SysfsRoot is where sysfs is mounted; tests point it at a fake tree.
var SysfsRoot = "/sys"

// Locator names a printer: by device node (Path) or by USB IDs (VID, PID: four uppercase
// hex digits each).
type Locator struct {
	Path     string
	VID, PID string
}

var idsRE = regexp.MustCompile(`^(?i)([0-9a-f]{4}):([0-9a-f]{4})$`)

// ParseLocator reads "/dev/usb/lp0", "lp0" (a name in /dev/usb) or "VID:PID", with or
// without the usblp: prefix. The error is of kind posagent.ErrInvalidInput.
func ParseLocator(s string) (Locator, error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, Prefix))
	switch {
	case s == "":
		return Locator{}, posagent.Invalidf("usb printer: empty locator (want usblp:/dev/usb/lp0 or usblp:VID:PID)")
	case strings.ContainsRune(s, '/'):
		return Locator{Path: filepath.Clean(s)}, nil
	}
	if m := idsRE.FindStringSubmatch(s); m != nil {
		return Locator{VID: strings.ToUpper(m[1]), PID: strings.ToUpper(m[2])}, nil
	}
	if strings.Contains(s, ":") {
		return Locator{}, posagent.Invalidf("usb printer: %q is neither a path nor VID:PID (four hex digits each)", s)
	}
	return Locator{Path: filepath.Join("/dev/usb", s)}, nil
}

// String returns the locator as ParseLocator reads it, with the prefix.
func (l Locator) String() string {
	if l.Path != "" {
		return Prefix + l.Path
	}
	return Prefix + strings.ToLower(l.VID+":"+l.PID)
}

// Device is one USB printer-class device of the machine.
type Device struct {
	Name         string `json:"name"` // /dev/usb/lp0
	VID          string `json:"vid,omitempty"`
	PID          string `json:"pid,omitempty"`
	Manufacturer string `json:"manufacturer,omitempty"`
	Product      string `json:"product,omitempty"`
	Serial       string `json:"serial,omitempty"`
}

// List lists the USB printer-class devices from sysfs (/sys/class/usbmisc/lp*). A machine
// without the class (no usblp driver loaded) has none: nil, nil.
func List() ([]Device, error) {
	dir := filepath.Join(SysfsRoot, "class", "usbmisc")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list usb printers: %w", err)
	}
	var out []Device
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "lp") {
			continue
		}
		// device is the USB interface; the IDs are on the USB device, its parent. The link
		// is resolved first: filepath.Join would drop "device/.." lexically.
		intf, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name(), "device"))
		if err != nil {
			continue
		}
		usb := filepath.Dir(intf)
		read := func(f string) string {
			b, _ := os.ReadFile(filepath.Join(usb, f))
			return strings.TrimSpace(string(b))
		}
		out = append(out, Device{
			Name: filepath.Join("/dev/usb", e.Name()),
			VID:  strings.ToUpper(read("idVendor")), PID: strings.ToUpper(read("idProduct")),
			Manufacturer: read("manufacturer"), Product: read("product"), Serial: read("serial"),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// resolve finds the device node the locator names now.
func resolve(l Locator) (string, error) {
	if l.Path != "" {
		return serial.ResolveNode(l.Path)
	}
	devs, err := List()
	if err != nil {
		return "", err
	}
	var found []string
	for _, d := range devs {
		if d.VID == l.VID && d.PID == l.PID {
			found = append(found, d.Name)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("usb printer %s: %w", strings.ToLower(l.VID+":"+l.PID), serial.ErrNotFound)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("usb printer %s: %d printers match (%s); name one by its device node", strings.ToLower(l.VID+":"+l.PID), len(found), strings.Join(found, ", "))
}

// ErrPermission is wrapped by the error for a device node the agent may not open.
var ErrPermission = errors.New("permission denied")

// Dialer returns the dial function for l: resolve, then open read-write and non-blocking
// (so that the descriptor is in Go's poller).
func Dialer(l Locator) connport.DialFunc {
	return func(ctx context.Context) (connport.Conn, string, error) {
		name, err := resolve(l)
		if err != nil {
			return nil, name, err
		}
		f, err := os.OpenFile(name, os.O_RDWR|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
		if err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
				return nil, name, fmt.Errorf("usb printer %s: %w: %v", name, serial.ErrNotFound, err)
			case errors.Is(err, fs.ErrPermission):
				return nil, name, fmt.Errorf("usb printer %s: %w: join the group that owns it (usually lp: usermod -aG lp posagent)", name, ErrPermission)
			}
			return nil, name, fmt.Errorf("usb printer %s: %w", name, err)
		}
		return f, name, nil
	}
}

// Open opens the printer l names. opt.What defaults to l's string.
func Open(ctx context.Context, l Locator, opt connport.Options) (*connport.Port, error) {
	if opt.What == "" {
		opt.What = l.String()
	}
	return connport.Open(ctx, Dialer(l), opt)
}
