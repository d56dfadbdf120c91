package serial

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// fakeDev is a device on a pty: the test holds the master side, the port under test opens
// the slave through a link that replug re-points, as udev's by-id links do.
type fakeDev struct {
	t      testing.TB
	link   string
	mu     sync.Mutex
	master *os.File
	slave  *os.File // held open so the master never reads EIO while the port is away
}

func newFakeDev(t testing.TB) *fakeDev {
	t.Helper()
	d := &fakeDev{t: t, link: filepath.Join(t.TempDir(), "dev")}
	d.plug()
	t.Cleanup(d.unplug)
	return d
}

// plug makes a new pty and points the link at it.
func (d *fakeDev) plug() {
	d.t.Helper()
	m, s, err := openPty()
	if err != nil {
		d.t.Fatalf("pty: %v", err)
	}
	tio, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		d.t.Fatal(err)
	}
	tio.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG | unix.IEXTEN
	tio.Iflag &^= unix.ICRNL | unix.IXON | unix.INLCR | unix.IGNCR
	tio.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(s.Fd()), unix.TCSETS, tio); err != nil {
		d.t.Fatal(err)
	}
	tmp := d.link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(s.Name(), tmp); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, d.link); err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.master, d.slave = m, s
	d.mu.Unlock()
}

// unplug closes the pty (the port sees EIO) and removes the link.
func (d *fakeDev) unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.master == nil {
		return
	}
	os.Remove(d.link)
	d.master.Close()
	d.slave.Close()
	d.master, d.slave = nil, nil
}

func (d *fakeDev) m() *os.File {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.master
}

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

// openPty opens a pty pair with the master in Go's poller (creack/pty leaves it in blocking
// mode), so that deadlines work and Close interrupts a blocked Read.
func openPty() (master, slave *os.File, err error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, nil, err
	}
	fd, err := unix.Dup(int(m.Fd()))
	m.Close()
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}
