package hid

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/drivers/serial"
)

// uinput ioctls (linux/uinput.h); the same numbers on arm, arm64 and amd64.
const (
	uiDevCreate  = 0x5501     // _IO('U', 1)
	uiDevDestroy = 0x5502     // _IO('U', 2)
	uiSetEvBit   = 0x40045564 // _IOW('U', 100, int)
	uiSetKeyBit  = 0x40045565 // _IOW('U', 101, int)
)

// virtualKeyboard is a keyboard made through /dev/uinput: a real event node, for the
// grab, the sysfs look-up and unplug/replug.
type virtualKeyboard struct {
	f    *os.File
	name string
}

func newVirtualKeyboard(t *testing.T, name string) *virtualKeyboard {
	t.Helper()
	f, err := os.OpenFile("/dev/uinput", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot open /dev/uinput (%v): no virtual keyboard, so the grab and replug on a real event node are not tested", err)
	}
	k := &virtualKeyboard{f: f, name: name}
	t.Cleanup(func() { k.destroy(); f.Close() })
	fd := int(f.Fd())
	if err := unix.IoctlSetInt(fd, uiSetEvBit, EvKey); err != nil {
		t.Fatalf("UI_SET_EVBIT: %v", err)
	}
	for code := 1; code < 128; code++ {
		if err := unix.IoctlSetInt(fd, uiSetKeyBit, code); err != nil {
			t.Fatalf("UI_SET_KEYBIT %d: %v", code, err)
		}
	}
	k.create(t)
	return k
}

// create writes struct uinput_user_dev (name[80], input_id{bustype, vendor, product,
// version}, ff_effects_max, absmax/absmin/absfuzz/absflat[64]) and creates the device.
func (k *virtualKeyboard) create(t *testing.T) {
	t.Helper()
	dev := make([]byte, 80+8+4+4*64*4)
	copy(dev, k.name)
	binary.LittleEndian.PutUint16(dev[80:], 0x03) // BUS_USB
	binary.LittleEndian.PutUint16(dev[82:], 0x1234)
	binary.LittleEndian.PutUint16(dev[84:], 0x5678)
	if _, err := k.f.Write(dev); err != nil {
		t.Fatalf("write uinput_user_dev: %v", err)
	}
	if err := unix.IoctlSetInt(int(k.f.Fd()), uiDevCreate, 0); err != nil {
		t.Fatalf("UI_DEV_CREATE: %v", err)
	}
}

func (k *virtualKeyboard) destroy() { unix.IoctlSetInt(int(k.f.Fd()), uiDevDestroy, 0) }

// typeText types s and Enter through the virtual keyboard.
func (k *virtualKeyboard) typeText(t *testing.T, s string) {
	t.Helper()
	ty := &typing{l: NativeLayout}
	ty.typeText(t, s)
	if _, err := k.f.Write(ty.buf); err != nil {
		t.Fatalf("type: %v", err)
	}
}

// TestOpen_Uinput opens a virtual keyboard by name, reads a code typed on it, checks that
// the grab keeps the keys from other readers, and follows an unplug and replug.
func TestOpen_Uinput(t *testing.T) {
	if _, err := os.Stat("/dev/uinput"); err != nil {
		t.Skip("this machine has no /dev/uinput, so no virtual keyboard can be made: EVIOCGRAB, the sysfs look-up of a real device and unplug/replug are not tested here")
	}
	name := fmt.Sprintf("posagent test scanner %d", os.Getpid())
	kb := newVirtualKeyboard(t, name)
	evs := make(chan serial.Event, 64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	src, err := Open(ctx, Locator{Name: name}, Options{WaitForDevice: true, OnEvent: func(ev serial.Event) {
		select {
		case evs <- ev:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if err := src.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(src.Name(), "/dev/input/event") {
		t.Errorf("Name() = %q, want an event node", src.Name())
	}
	sc, err := scanner.New(src, scanner.Config{Frame: scanner.FrameConfig{Suffix: scanner.SuffixCR}})
	if err != nil {
		t.Fatal(err)
	}

	// Another reader of the node sees nothing while the scanner is grabbed.
	other, err := os.OpenFile(src.Name(), os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	kb.typeText(t, "134567890123456789")
	s, err := sc.Next(ctx)
	if err != nil || s.Code != "134567890123456789" {
		t.Fatalf("Next = %q, %v", s.Code, err)
	}
	other.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var buf [64]byte
	if n, err := other.Read(buf[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("another reader got %d bytes (%v): the grab let the keys through", n, err)
	}

	// Unplug and replug: the source follows.
	kb.destroy()
	for down := false; !down; { // the source notices on its next read (reads time out while away)
		if _, err := src.Read(buf[:]); err != nil && !errors.Is(err, serial.ErrClosed) {
			t.Logf("read after the unplug: %v", err)
		}
		select {
		case ev := <-evs:
			down = ev.Kind == serial.Disconnected
		case <-ctx.Done():
			t.Fatal("no Disconnected event after the virtual keyboard was destroyed")
		default:
		}
	}
	kb.create(t)
	if err := src.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	kb.typeText(t, "ABC-123")
	if s, err := sc.Next(ctx); err != nil || s.Code != "ABC-123" {
		t.Fatalf("Next after the replug = %q, %v", s.Code, err)
	}
}
