// Package hid reads barcode/QR scanners in USB HID keyboard mode (the factory default of
// most scanners) through Linux evdev, /dev/input/eventN. The device is taken exclusively
// (EVIOCGRAB), so the code a customer shows is not typed into whatever program has the
// keyboard focus; key events are turned into characters in the US layout (Keyboard, a
// pure state machine) and each code ended by Enter is handed on as "CODE\r", for the same
// framing and classification as a serial scanner (drivers/scanner with the CR suffix).
//
// A scanner is named by its event node (hid:/dev/input/event3), by USB VID:PID
// (hid:0c2e:0b61) or by a part of its name (hid:name=Honeywell), looked up in sysfs
// (/sys/class/input/event*/device/{name,id/vendor,id/product}) at every (re)connect, so a
// scanner that comes back as another event node after a replug is found again.
package hid

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/serial"
)

// Prefix starts a HID scanner's port string.
const Prefix = "hid:"

// SysfsRoot is where sysfs is mounted; tests point it at a fake tree.
var SysfsRoot = "/sys"

// ErrPermission is wrapped by the error for an event node the agent may not open.
var ErrPermission = errors.New("permission denied")

// PermissionHint tells the operator how to get access to input devices.
const PermissionHint = "add the agent's user to the input group: usermod -aG input posagent (then restart it)"

// Locator names a scanner: by event node (Path), USB IDs (VID, PID: four uppercase hex
// digits) or a substring of its name (Name, matched without regard to case).
type Locator struct {
	Path     string
	VID, PID string
	Name     string
}

var idsRE = regexp.MustCompile(`^(?i)([0-9a-f]{4}):([0-9a-f]{4})$`)

// ParseLocator reads "/dev/input/event3", "event3", "VID:PID" or "name=SUBSTRING", with or
// without the hid: prefix. The error is of kind posagent.ErrInvalidInput.
func ParseLocator(s string) (Locator, error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, Prefix))
	switch {
	case s == "":
		return Locator{}, posagent.Invalidf("hid scanner: empty locator (want hid:/dev/input/eventN, hid:VID:PID or hid:name=TEXT)")
	case strings.HasPrefix(s, "name="):
		n := strings.TrimSpace(strings.TrimPrefix(s, "name="))
		if n == "" {
			return Locator{}, posagent.Invalidf("hid scanner: empty name= (want hid:name=PART-OF-THE-NAME)")
		}
		return Locator{Name: n}, nil
	case strings.ContainsRune(s, '/'):
		return Locator{Path: filepath.Clean(s)}, nil
	}
	if m := idsRE.FindStringSubmatch(s); m != nil {
		return Locator{VID: strings.ToUpper(m[1]), PID: strings.ToUpper(m[2])}, nil
	}
	if strings.HasPrefix(s, "event") && !strings.ContainsAny(s, ":=") {
		return Locator{Path: filepath.Join("/dev/input", s)}, nil
	}
	return Locator{}, posagent.Invalidf("hid scanner: %q is neither /dev/input/eventN, VID:PID nor name=TEXT", s)
}

// String returns the locator as ParseLocator reads it, with the prefix.
func (l Locator) String() string {
	switch {
	case l.Path != "":
		return Prefix + l.Path
	case l.Name != "":
		return Prefix + "name=" + l.Name
	}
	return Prefix + strings.ToLower(l.VID+":"+l.PID)
}

// Device is one input event device of the machine.
type Device struct {
	Name    string `json:"name"`    // /dev/input/event3
	Product string `json:"product"` // the device's name, "Honeywell Imaging ... Keyboard"
	VID     string `json:"vid,omitempty"`
	PID     string `json:"pid,omitempty"`
	Bus     string `json:"bus,omitempty"` // "usb" for bus type 3
}

// List lists the input event devices from sysfs (/sys/class/input/event*).
func List() ([]Device, error) {
	dir := filepath.Join(SysfsRoot, "class", "input")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list input devices: %w", err)
	}
	var out []Device
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "event") {
			continue
		}
		dev := filepath.Join(dir, e.Name(), "device")
		read := func(f string) string {
			b, _ := os.ReadFile(filepath.Join(dev, f))
			return strings.TrimSpace(string(b))
		}
		d := Device{Name: filepath.Join("/dev/input", e.Name()), Product: read("name"),
			VID: strings.ToUpper(read("id/vendor")), PID: strings.ToUpper(read("id/product"))}
		if read("id/bustype") == "0003" {
			d.Bus = "usb"
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return eventNum(out[i].Name) < eventNum(out[j].Name) })
	return out, nil
}

func eventNum(name string) int {
	n := 0
	for _, c := range strings.TrimPrefix(filepath.Base(name), "event") {
		if c < '0' || c > '9' {
			return 1 << 30
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// Matches reports whether the device is the one l names (by IDs or name).
func (l Locator) Matches(d Device) bool {
	switch {
	case l.Name != "":
		return strings.Contains(strings.ToLower(d.Product), strings.ToLower(l.Name))
	case l.VID != "":
		return d.VID == l.VID && d.PID == l.PID
	}
	return false
}

// resolve finds the event node l names now. A scanner with a keyboard and a system-control
// interface has several event nodes with the same IDs: the first (lowest event number) is
// the keyboard, which is where the codes come.
func resolve(l Locator) (string, error) {
	if l.Path != "" {
		return serial.ResolveNode(l.Path)
	}
	devs, err := List()
	if err != nil {
		return "", err
	}
	for _, d := range devs {
		if l.Matches(d) {
			return d.Name, nil
		}
	}
	return "", fmt.Errorf("hid scanner %s: %w", l.String(), serial.ErrNotFound)
}

// evioCGrab is EVIOCGRAB, _IOW('E', 0x90, int): the same number on arm, arm64 and amd64.
const evioCGrab = 0x40044590

// Dialer returns the dial function for l: resolve, open read-only and non-blocking (in
// Go's poller), grab. Without permission the error wraps ErrPermission and says which group
// to join.
func Dialer(l Locator) connport.DialFunc {
	return func(ctx context.Context) (connport.Conn, string, error) {
		name, err := resolve(l)
		if err != nil {
			return nil, name, err
		}
		f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			switch {
			case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.ENXIO):
				return nil, name, fmt.Errorf("hid scanner %s: %w: %v", name, serial.ErrNotFound, err)
			case errors.Is(err, fs.ErrPermission):
				return nil, name, fmt.Errorf("hid scanner %s: %w: %s", name, ErrPermission, PermissionHint)
			}
			return nil, name, fmt.Errorf("hid scanner %s: %w", name, err)
		}
		if err := grab(f); err != nil {
			f.Close()
			return nil, name, fmt.Errorf("hid scanner %s: take it exclusively (EVIOCGRAB): %w", name, err)
		}
		return f, name, nil
	}
}

// grab takes the device exclusively, through the poller's descriptor (Fd() would make the
// file blocking and its reads uninterruptible).
func grab(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), evioCGrab, 1) }); err != nil {
		return err
	}
	return ierr
}

// Options configure a Scanner source.
type Options struct {
	// Layout is the struct input_event layout; the zero value means NativeLayout.
	Layout Layout
	// MaxLen bounds a code; 0 means DefaultMaxLen.
	MaxLen int
	// WaitForDevice, OnEvent and Logger are as for connport.Options.
	WaitForDevice bool
	OnEvent       func(serial.Event)
	Logger        *slog.Logger
}

// Stats counts what the decoder saw.
type Stats struct {
	Codes, Rejected, UnknownKeys int
}

// Reader reads a stream of input events and gives the codes typed as "CODE\r" bytes. It
// satisfies io.Reader and scanner.TimeoutSetter (when its source does), so
// scanner.New(reader, …) with SuffixCR frames and classifies the codes. Rejected codes are
// logged (reason and length, never the characters) and counted.
type Reader struct {
	src    rawSource
	layout Layout
	kb     Keyboard
	log    *slog.Logger
	raw    []byte // undecoded bytes (a partial event)
	out    []byte // decoded bytes not yet read
	reset  atomic.Bool
	stats  Stats
}

type rawSource interface {
	Read([]byte) (int, error)
}

// NewReader decodes events in layout l (zero: NativeLayout) from src.
func NewReader(src interface{ Read([]byte) (int, error) }, l Layout, maxLen int, log *slog.Logger) *Reader {
	if l.TimeSize == 0 {
		l = NativeLayout
	}
	if log == nil {
		log = slog.Default()
	}
	return &Reader{src: src, layout: l, kb: Keyboard{MaxLen: maxLen}, log: log, raw: make([]byte, 0, 64*l.Size())}
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.stats }

// Reset drops a half-decoded event and code (the device reconnected); safe to call from
// another goroutine.
func (r *Reader) Reset() { r.reset.Store(true) }

// Read returns decoded bytes; it returns 0, nil when the source did (a read timeout) and
// the source's error otherwise.
func (r *Reader) Read(b []byte) (int, error) {
	for len(r.out) == 0 {
		if r.reset.Swap(false) {
			r.raw = r.raw[:0]
			r.kb.Reset()
		}
		start := len(r.raw)
		r.raw = r.raw[:cap(r.raw)]
		n, err := r.src.Read(r.raw[start:])
		r.raw = r.raw[:start+n]
		evs, used := DecodeEvents(r.layout, r.raw)
		r.raw = r.raw[:copy(r.raw, r.raw[used:])]
		for _, ev := range evs {
			r.feed(ev)
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
	}
	n := copy(b, r.out)
	r.out = r.out[:copy(r.out, r.out[n:])]
	return n, nil
}

func (r *Reader) feed(ev Event) {
	t, ok := r.kb.Feed(ev)
	if !ok {
		return
	}
	if t.Err != nil {
		r.stats.Rejected++
		if errors.Is(t.Err, ErrUnknownKey) {
			r.stats.UnknownKeys++
		}
		r.log.Warn("hid scanner: input rejected", "reason", t.Err.Error(), "chars", t.Len)
		return
	}
	r.stats.Codes++
	r.out = append(r.out, t.Code...)
	r.out = append(r.out, '\r')
}

// Source is an open HID scanner: a reconnecting, grabbed event node and the decoder on
// it. Use it as the io.ReadWriter of scanner.New with SuffixCR.
type Source struct {
	*Reader
	port *connport.Port
}

// Open opens and grabs the scanner l names.
func Open(ctx context.Context, l Locator, opt Options) (*Source, error) {
	s := &Source{}
	onEvent := func(ev serial.Event) {
		if ev.Kind == serial.Connected && s.Reader != nil {
			s.Reader.Reset()
		}
		if opt.OnEvent != nil {
			opt.OnEvent(ev)
		}
	}
	p, err := connport.Open(ctx, Dialer(l), connport.Options{What: l.String(), WaitForDevice: opt.WaitForDevice, OnEvent: onEvent, Logger: opt.Logger})
	if err != nil {
		return nil, err
	}
	s.port = p
	s.Reader = NewReader(p, opt.Layout, opt.MaxLen, opt.Logger)
	return s, nil
}

// ErrNoCommands is returned by Write: a keyboard-mode scanner takes no commands (no serial
// trigger).
var ErrNoCommands = errors.New("hid scanner: a keyboard-mode scanner takes no commands")

// Write fails with ErrNoCommands.
func (s *Source) Write([]byte) (int, error) { return 0, ErrNoCommands }

// SetReadTimeout sets how long Read waits before it returns 0, nil.
func (s *Source) SetReadTimeout(d time.Duration) error { return s.port.SetReadTimeout(d) }

// Connected reports whether the scanner is there.
func (s *Source) Connected() bool { return s.port.Connected() }

// WaitConnected waits until the scanner is there.
func (s *Source) WaitConnected(ctx context.Context) error { return s.port.WaitConnected(ctx) }

// Name is the event node in use, /dev/input/event3.
func (s *Source) Name() string { return s.port.Name() }

// Close releases the device (the grab ends with the descriptor).
func (s *Source) Close() error { return s.port.Close() }
