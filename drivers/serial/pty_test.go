package serial

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim"
)

// fakeDev is a device on a pty: the test holds the master side, the port under test opens
// the slave through a link that replug re-points, as udev's by-id links do. The pty and
// the link are possim's Link, the simulator's own mechanism.
type fakeDev struct {
	t    testing.TB
	link string
	dev  *possim.Link
}

func newFakeDev(t testing.TB) *fakeDev {
	t.Helper()
	l, err := possim.NewLink(filepath.Join(t.TempDir(), "dev"))
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	t.Cleanup(l.Unplug)
	return &fakeDev{t: t, link: l.Path, dev: l}
}

// plug makes a new pty and points the link at it.
func (d *fakeDev) plug() {
	d.t.Helper()
	if err := d.dev.Plug(); err != nil {
		d.t.Fatal(err)
	}
}

// unplug closes the pty (the port sees EIO) and removes the link.
func (d *fakeDev) unplug() { d.dev.Unplug() }

func (d *fakeDev) m() *os.File { return d.dev.Master() }

// readN reads exactly n bytes from the master side, failing the test after 5 s.
func (d *fakeDev) readN(n int) []byte {
	d.t.Helper()
	m := d.m()
	buf := make([]byte, 0, n)
	m.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer m.SetReadDeadline(time.Time{})
	tmp := make([]byte, 4096)
	for len(buf) < n {
		k, err := m.Read(tmp[:min(len(tmp), n-len(buf))])
		buf = append(buf, tmp[:k]...)
		if err != nil {
			d.t.Fatalf("read master: got %d of %d bytes: %v", len(buf), n, err)
		}
	}
	return buf
}
