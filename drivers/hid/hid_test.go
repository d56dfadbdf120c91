package hid

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/drivers/serial"
)

// Key codes used by the recordings below.
const (
	key1         = 2
	key3         = 4
	keyA         = 30
	keyB         = 48
	keyQ         = 16
	keyF1        = 59 // not in the layout
	keyMinus     = 12
	keySlash     = 53
	keySemicolon = 39
)

// typing records a scanner typing: each key is pressed (1) and released (0) with a
// SYN_REPORT after each, as the kernel reports a HID keyboard; shifted keys are wrapped
// in left shift down/up, and MSC_SCAN events precede each key as on real devices.
type typing struct {
	l   Layout
	buf []byte
}

func (ty *typing) ev(typ, code uint16, v int32) {
	ty.buf = EncodeEvent(ty.l, ty.buf, Event{Type: typ, Code: code, Value: v})
}

func (ty *typing) key(code uint16, v int32) {
	ty.ev(EvMsc, 4, 0x70000+int32(code))
	ty.ev(EvKey, code, v)
	ty.ev(EvSyn, 0, 0)
}

func (ty *typing) tap(code uint16) { ty.key(code, KeyPressed); ty.key(code, KeyReleased) }
func (ty *typing) shifted(code uint16) {
	ty.key(KeyLeftShift, KeyPressed)
	ty.tap(code)
	ty.key(KeyLeftShift, KeyReleased)
}
func (ty *typing) enter() { ty.tap(KeyEnter) }

// typeText types s (letters, digits, the characters of the US layout) and Enter.
func (ty *typing) typeText(t testing.TB, s string) {
	for _, c := range []byte(s) {
		code, shift, ok := findKey(c)
		if !ok {
			t.Fatalf("no key for %q", c)
		}
		if shift {
			ty.shifted(code)
		} else {
			ty.tap(code)
		}
	}
	ty.enter()
}

// findKey is the inverse of the US keymap, for the recordings (main row keys first).
func findKey(c byte) (code uint16, shift, ok bool) {
	for k := uint16(1); k < 70; k++ {
		m, in := usKeys[k]
		if !in {
			continue
		}
		if m[0] == c {
			return k, false, true
		}
		if m[1] == c {
			return k, true, true
		}
	}
	return 0, false, false
}

var layouts = []struct {
	name string
	l    Layout
}{{"64-bit", Layout64}, {"arm32", LayoutARM32}}

func TestLayoutSizes(t *testing.T) {
	if got, want := Layout64.Size(), 24; got != want {
		t.Errorf("64-bit event size = %d, want %d", got, want)
	}
	if got, want := LayoutARM32.Size(), 16; got != want {
		t.Errorf("32-bit ARM event size = %d, want %d", got, want)
	}
	want := map[string]int{"arm": 16, "386": 16, "arm64": 24, "amd64": 24}[runtime.GOARCH]
	if got := NativeLayout.Size(); want != 0 && got != want {
		t.Errorf("native event size on %s = %d, want %d", runtime.GOARCH, got, want)
	}
}

// readAll feeds a recording through a pipe (in chunks that cut events apart, as reads of a
// real device may not) and reads the codes with drivers/scanner, as the agent does.
func readCodes(t *testing.T, l Layout, rec []byte, maxLen int) ([]string, Stats, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		defer w.Close()
		for len(rec) > 0 {
			n := min(7, len(rec)) // 7 divides neither 16 nor 24
			if _, err := w.Write(rec[:n]); err != nil {
				return
			}
			rec = rec[n:]
		}
	}()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dec := NewReader(r, l, maxLen, log)
	sc, err := scanner.New(readWriter{dec}, scanner.Config{Frame: scanner.FrameConfig{Suffix: scanner.SuffixCR}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	for {
		s, err := sc.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		codes = append(codes, s.Code)
	}
	return codes, dec.Stats(), logs.String()
}

type readWriter struct{ io.Reader }

func (readWriter) Write(b []byte) (int, error) { return 0, ErrNoCommands }

func TestReader_Recordings(t *testing.T) {
	const payment = "134567890123456789"
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			ty := &typing{l: lay.l}
			ty.typeText(t, payment)                             // digits
			ty.typeText(t, "https://Pay.Example/q?A=1&b=\"x\"") // shifted symbols, mixed case
			// caps lock on: letters upper case, shift makes them lower; digits unchanged
			ty.tap(KeyCapsLock)
			ty.tap(keyA)
			ty.shifted(keyB)
			ty.tap(key1)
			ty.shifted(key3)
			ty.tap(KeyCapsLock)
			ty.tap(keyQ)
			ty.tap(KeyKPEnter)
			// an unknown key rejects the whole code
			ty.tap(key1)
			ty.tap(keyF1)
			ty.tap(key1)
			ty.enter()
			// autorepeat is not a character; a bare Enter ends nothing
			ty.tap(key1)
			ty.key(keyA, KeyPressed)
			ty.key(keyA, KeyRepeated)
			ty.key(keyA, KeyRepeated)
			ty.key(keyA, KeyReleased)
			ty.tap(keyB)
			ty.tap(key1)
			ty.enter()
			ty.enter()
			// keypad digits and right shift
			ty.tap(79)
			ty.tap(82)
			ty.key(KeyRightShift, KeyPressed)
			ty.tap(keyMinus)
			ty.tap(keySlash)
			ty.tap(keySemicolon)
			ty.key(KeyRightShift, KeyReleased)
			ty.enter()

			got, st, logs := readCodes(t, lay.l, ty.buf, 0)
			want := []string{payment, "https://Pay.Example/q?A=1&b=\"x\"", "Ab1#q", "1ab1", "10_?:"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("codes:\n%q\nwant:\n%q", got, want)
			}
			if st.Codes != len(want) || st.Rejected != 1 || st.UnknownKeys != 1 {
				t.Errorf("stats = %+v, want %d codes, 1 rejected for an unknown key", st, len(want))
			}
			if !strings.Contains(logs, "key outside the keyboard layout") {
				t.Errorf("logs do not give the rejection's reason:\n%s", logs)
			}
		})
	}
}

func TestReader_TooLong(t *testing.T) {
	const secret = "9876543210987654321"
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			ty := &typing{l: lay.l}
			ty.typeText(t, secret)
			ty.typeText(t, "12345")
			got, st, logs := readCodes(t, lay.l, ty.buf, 10)
			if want := []string{"12345"}; strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("codes = %q, want %q (the over-long one rejected)", got, want)
			}
			if st.Rejected != 1 {
				t.Errorf("rejected = %d, want 1", st.Rejected)
			}
			if !strings.Contains(logs, "code too long") {
				t.Errorf("logs do not say the code was too long:\n%s", logs)
			}
			for _, part := range []string{secret, secret[:10], "9876543210"} {
				if strings.Contains(logs, part) {
					t.Errorf("logs leak the code: %s", logs)
				}
			}
		})
	}
}

// TestDecodeEvents_Layouts decodes the same events recorded in each layout, with a partial
// event left over.
func TestDecodeEvents_Layouts(t *testing.T) {
	want := []Event{{EvKey, keyA, 1}, {EvSyn, 0, 0}, {EvKey, keyA, 0}, {EvMsc, 4, -5}}
	for _, lay := range layouts {
		var rec []byte
		for _, ev := range want {
			rec = EncodeEvent(lay.l, rec, ev)
		}
		rec = append(rec, 1, 2, 3) // the start of the next event
		got, n := DecodeEvents(lay.l, rec)
		if n != len(rec)-3 {
			t.Errorf("%s: used %d bytes, want %d", lay.name, n, len(rec)-3)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: decoded %v, want %v", lay.name, got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: event %d = %v, want %v", lay.name, i, got[i], want[i])
			}
		}
	}
	// The wrong layout does not give the same events: the layouts are not interchangeable.
	var rec []byte
	for _, ev := range want {
		rec = EncodeEvent(Layout64, rec, ev)
	}
	if got, _ := DecodeEvents(LayoutARM32, rec); len(got) == len(want) && got[0] == want[0] && got[1] == want[1] {
		t.Errorf("64-bit events decoded as 32-bit ARM ones gave the same events: %v", got)
	}
}

func TestParseLocator(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Locator
	}{
		{"hid:/dev/input/event3", Locator{Path: "/dev/input/event3"}},
		{"hid:event7", Locator{Path: "/dev/input/event7"}},
		{"hid:0c2e:0b61", Locator{VID: "0C2E", PID: "0B61"}},
		{"hid:name=Honeywell", Locator{Name: "Honeywell"}},
	} {
		got, err := ParseLocator(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLocator(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if got.String() != tc.in && !strings.HasPrefix(tc.in, "hid:event") {
			t.Errorf("%+v.String() = %q, want %q", got, got.String(), tc.in)
		}
	}
	for _, in := range []string{"hid:", "hid:name=", "hid:foo", "hid:0c2e:0b6"} {
		if _, err := ParseLocator(in); !errors.Is(err, posagent.ErrInvalidInput) {
			t.Errorf("ParseLocator(%q) = %v, want an invalid-input error", in, err)
		}
	}
}

// fakeInput makes /sys/class/input/eventN/device/{name,id/vendor,id/product}.
func fakeInput(t *testing.T, devs map[string][3]string) {
	t.Helper()
	root := t.TempDir()
	old := SysfsRoot
	SysfsRoot = root
	t.Cleanup(func() { SysfsRoot = old })
	for ev, d := range devs {
		dir := filepath.Join(root, "class", "input", ev, "device")
		if err := os.MkdirAll(filepath.Join(dir, "id"), 0o755); err != nil {
			t.Fatal(err)
		}
		for f, v := range map[string]string{"name": d[0], "id/vendor": d[1], "id/product": d[2], "id/bustype": "0003"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestResolve_Sysfs(t *testing.T) {
	fakeInput(t, map[string][3]string{
		"event2":  {"AT Translated Set 2 keyboard", "0001", "0001"},
		"event11": {"Honeywell Imaging & Mobility 1900 System Control", "0c2e", "0b61"},
		"event10": {"Honeywell Imaging & Mobility 1900 Keyboard", "0c2e", "0b61"},
	})
	for _, tc := range []struct{ loc, want string }{
		{"hid:0c2e:0b61", "/dev/input/event10"}, // the lowest of the scanner's nodes: the keyboard
		{"hid:name=1900 keyboard", "/dev/input/event10"},
		{"hid:name=AT Translated", "/dev/input/event2"},
	} {
		l, _ := ParseLocator(tc.loc)
		got, err := resolve(l)
		if err != nil || got != tc.want {
			t.Errorf("resolve(%s) = %q, %v; want %q", tc.loc, got, err, tc.want)
		}
	}
	l, _ := ParseLocator("hid:name=Zebra")
	if _, err := resolve(l); !errors.Is(err, serial.ErrNotFound) {
		t.Errorf("resolve of an absent scanner = %v, want ErrNotFound", err)
	}
	devs, err := List()
	if err != nil || len(devs) != 3 || devs[0].Name != "/dev/input/event2" || devs[2].Name != "/dev/input/event11" || devs[1].VID != "0C2E" || devs[1].Bus != "usb" {
		t.Errorf("List = %+v, %v; want the three devices by event number", devs, err)
	}
}

// TestOpen_Permission: without access to the event node, the error names the group to join.
func TestOpen_Permission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: every device node is readable, so the permission error cannot be provoked")
	}
	node := filepath.Join(t.TempDir(), "event0")
	if err := os.WriteFile(node, nil, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Locator{Path: node}, Options{})
	if !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "usermod -aG input") {
		t.Fatalf("Open without permission = %v, want ErrPermission naming the input group", err)
	}
}

// TestOpen_NotAnEventDevice: opening a node that is not an input device fails at the grab,
// with a clear error (a pipe stands in: it takes no ioctl).
func TestOpen_NotAnEventDevice(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "event0")
	if err := os.WriteFile(node, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := Open(ctx, Locator{Path: node}, Options{})
	if err == nil || !strings.Contains(err.Error(), "EVIOCGRAB") {
		t.Fatalf("Open of a plain file = %v, want the grab to fail", err)
	}
}
