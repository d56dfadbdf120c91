package serial

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/posagent/posagent"
)

// ByIDDir is where udev keeps stable links to USB serial devices, named after the device's
// vendor, product and serial number, that survive a replug under another tty name.
const ByIDDir = "/dev/serial/by-id"

// Locator says how to find a device. Exactly one of Path or VID/PID is set.
type Locator struct {
	// Path is a device node (/dev/ttyUSB0) or a link to one (/dev/serial/by-id/…, a possim
	// link). Links are resolved again at every (re)connect, so a device that comes back
	// under a new tty name is found through its link.
	Path string
	// VID and PID are the USB vendor and product IDs, four uppercase hex digits each;
	// Serial, if set, is the USB serial number that picks one of several identical devices.
	VID, PID, Serial string
}

var usbLocator = regexp.MustCompile(`^(?i)([0-9a-f]{4}):([0-9a-f]{4})(?::(.+))?$`)

// ParseLocator reads a locator from one string:
//
//	/dev/ttyUSB0, ./sim/printer      a path (device node or link to one)
//	ttyACM0                          a name in /dev
//	usb-Honeywell_..._if00           a name in /dev/serial/by-id
//	0c2e:0b61  or  0c2e:0b61:SN123   USB VID:PID, optionally with the USB serial number
//
// The error is of kind posagent.ErrInvalidInput.
func ParseLocator(s string) (Locator, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return Locator{}, posagent.Invalidf("serial port: empty device locator")
	case strings.ContainsRune(s, '/'):
		return Locator{Path: filepath.Clean(s)}, nil
	}
	if m := usbLocator.FindStringSubmatch(s); m != nil {
		return Locator{VID: strings.ToUpper(m[1]), PID: strings.ToUpper(m[2]), Serial: m[3]}, nil
	}
	if strings.Contains(s, ":") {
		return Locator{}, posagent.Invalidf("serial port: %q is neither a path nor VID:PID[:SERIAL] (four hex digits each)", s)
	}
	if strings.HasPrefix(s, "usb-") || strings.HasPrefix(s, "pci-") {
		return Locator{Path: filepath.Join(ByIDDir, s)}, nil
	}
	return Locator{Path: filepath.Join("/dev", s)}, nil
}

// IsUSB reports whether the locator finds the device by USB IDs.
func (l Locator) IsUSB() bool { return l.Path == "" && l.VID != "" }

// String returns the locator in the form ParseLocator reads.
func (l Locator) String() string {
	if !l.IsUSB() {
		return l.Path
	}
	s := strings.ToLower(l.VID + ":" + l.PID)
	if l.Serial != "" {
		s += ":" + l.Serial
	}
	return s
}

// Matches reports whether a USB device with these IDs is the one the locator names.
func (l Locator) Matches(vid, pid, serial string) bool {
	return l.IsUSB() && strings.EqualFold(l.VID, vid) && strings.EqualFold(l.PID, pid) &&
		(l.Serial == "" || l.Serial == serial)
}

func (l Locator) describe() string {
	if l.IsUSB() {
		return "USB device " + l.String()
	}
	return l.Path
}

// errNotFound builds the error for a device that is not there.
func errNotFound(l Locator, cause error) error {
	if cause != nil {
		return fmt.Errorf("%s: %w: %v", l.describe(), ErrNotFound, cause)
	}
	return fmt.Errorf("%s: %w", l.describe(), ErrNotFound)
}

// ResolveNode follows the links of a device path (a by-id or by-path name, a udev
// symlink) to the device node it names now: ErrNotFound when nothing is there. The other
// transports (drivers/hid, drivers/usblp) locate their path forms with it.
func ResolveNode(path string) (string, error) {
	name, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return name, nil
}
