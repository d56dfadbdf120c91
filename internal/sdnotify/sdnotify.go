// Package sdnotify speaks systemd's service notification protocol (sd_notify(3)): a
// datagram of "KEY=VALUE" lines to the unix socket named by $NOTIFY_SOCKET. It tells a
// Type=notify unit that the service is ready (READY=1), stopping (STOPPING=1), and alive
// (WATCHDOG=1, within WatchdogSec=). Outside systemd every call is a no-op.
package sdnotify

import (
	"errors"
	"net"
	"os"
	"strconv"
	"time"
)

// Notify sends state (e.g. "READY=1") to systemd. It returns nil without doing anything
// when $NOTIFY_SOCKET is not set.
func Notify(state string) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' {
		addr = "\x00" + addr[1:] // the abstract namespace
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.Write([]byte(state))
	return err
}

// WatchdogInterval is how often the service must send WATCHDOG=1: half of $WATCHDOG_USEC
// (systemd's WatchdogSec=), or 0 when no watchdog is set for this process.
func WatchdogInterval() (time.Duration, error) {
	s := os.Getenv("WATCHDOG_USEC")
	if s == "" {
		return 0, nil
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0, nil // meant for another process
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil || us <= 0 {
		return 0, errors.New("WATCHDOG_USEC is not a positive number of microseconds")
	}
	return time.Duration(us) * time.Microsecond / 2, nil
}
