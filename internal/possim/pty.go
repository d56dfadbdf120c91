package possim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ErrNotPlugged is returned for an operation on a device that is unplugged.
var ErrNotPlugged = errors.New("device is unplugged")

// Link is a simulated device's pseudo-terminal and the stable link to it, DIR/NAME. The
// simulator holds the master side; a driver opens the link (the slave side) like a serial
// port. Unplug closes the pty, so the driver reads and writes fail as on a pulled USB
// cable, and removes the link; Plug makes a new pty, usually under another /dev/pts name,
// and points the link at it, as udev re-points /dev/serial/by-id links on a replug.
type Link struct {
	Path string // DIR/NAME

	mu     sync.Mutex
	master *os.File
	slave  *os.File // held open so the master never reads EIO while no driver has the port
	gen    int
}

// NewLink makes a pty and the link path to it.
func NewLink(path string) (*Link, error) {
	l := &Link{Path: path}
	if err := l.Plug(); err != nil {
		return nil, err
	}
	return l, nil
}

// Plug makes a new pty and points the link at it; it fails if the device is plugged.
func (l *Link) Plug() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.master != nil {
		return fmt.Errorf("plug %s: already plugged", l.Path)
	}
	m, s, err := openPty()
	if err != nil {
		return fmt.Errorf("plug %s: open pty: %w", l.Path, err)
	}
	if err := makeRaw(s); err != nil {
		m.Close()
		s.Close()
		return fmt.Errorf("plug %s: %w", l.Path, err)
	}
	tmp := l.Path + ".new"
	os.Remove(tmp)
	err = os.Symlink(s.Name(), tmp)
	if err == nil {
		err = os.Rename(tmp, l.Path)
	}
	if err != nil {
		m.Close()
		s.Close()
		return fmt.Errorf("plug %s: link: %w", l.Path, err)
	}
	l.master, l.slave = m, s
	l.gen++
	return nil
}

// Unplug closes the pty and removes the link, unless the link no longer points at this
// pty (another simulator took the path over): then it is left alone. Unplugging an
// unplugged device does nothing.
func (l *Link) Unplug() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.master == nil {
		return
	}
	if target, err := os.Readlink(l.Path); err == nil && target == l.slave.Name() {
		os.Remove(l.Path)
	}
	l.master.Close()
	l.slave.Close()
	l.master, l.slave = nil, nil
}

// Master returns the master side of the current pty, nil while unplugged.
func (l *Link) Master() *os.File {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.master
}

// TTY returns the current pty's slave name (/dev/pts/N), "" while unplugged.
func (l *Link) TTY() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.slave == nil {
		return ""
	}
	return l.slave.Name()
}

// Plugs counts how many ptys the link has had (1 before any replug).
func (l *Link) Plugs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gen
}

// openPty opens a pty pair whose master is in Go's poller, so that closing it (on unplug)
// interrupts a Read blocked on it and deadlines work. creack/pty's Open calls Fd() on the
// master for its ioctls, which puts the file in blocking mode: a blocked Read then keeps
// the descriptor open after Close, and the driver on the other side never sees the hangup.
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
	unix.CloseOnExec(fd)
	return os.NewFile(uintptr(fd), "/dev/ptmx"), s, nil
}

// makeRaw puts the pty in raw mode at once, so bytes the simulator sends before a driver
// opens the port (and sets raw mode itself) are neither echoed nor translated.
func makeRaw(f *os.File) error {
	fd := int(f.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	return nil
}

// linkPath returns DIR/name, absolute.
func linkPath(dir, name string) (string, error) {
	abs, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	return abs, nil
}
