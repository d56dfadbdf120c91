// Package flock is an exclusive, non-blocking lock on a file (flock(2)): one process at a
// time writes a journal. The lock goes with the process: a crash or kill -9 releases it.
package flock

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked: another process holds the lock.
var ErrLocked = errors.New("in use by another process")

// LockedError is a lock held by another process: the file and the holder's pid.
type LockedError struct {
	Path string
	PID  string // as the holder wrote it; empty if unknown
}

func (e *LockedError) Error() string {
	if e.PID == "" {
		return fmt.Sprintf("%s is locked by another process", e.Path)
	}
	return fmt.Sprintf("%s is locked by process %s", e.Path, e.PID)
}

// Unwrap returns ErrLocked.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock is a held lock.
type Lock struct{ f *os.File }

// Acquire takes the lock on path (created 0600 if missing) without waiting: a lock held
// elsewhere is a *LockedError at once. The holder's pid is written into the file.
func Acquire(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: strings.TrimSpace(string(b[:n]))}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f}, nil
}

// Release drops the lock; releasing twice, or a nil lock, is harmless.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}
