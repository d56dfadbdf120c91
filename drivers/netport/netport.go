// Package netport is the network printer transport: ESC/POS over a raw TCP connection, the
// "port 9100" (AppSocket/JetDirect) interface of Ethernet receipt printers. Status
// requests (DLE EOT) go through the same socket and the printer answers on it.
//
// A Port reconnects with backoff when the printer goes away (connection refused, reset,
// closed), and a printer that accepts the connection but never reads fails a write with
// connport.ErrStalled after the write timeout instead of blocking for ever: see
// drivers/connport.
package netport

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/serial"
)

// DefaultPort is the raw printing port of network receipt printers.
const DefaultPort = 9100

// Prefix starts a network printer's port string: tcp:HOST[:PORT].
const Prefix = "tcp:"

// ParseAddr reads HOST[:PORT] (an IPv6 host in brackets: [fe80::1]:9100) and returns
// host:port with the default port 9100 filled in. The error is of kind
// posagent.ErrInvalidInput.
func ParseAddr(s string) (string, error) {
	s = strings.TrimSpace(strings.TrimPrefix(s, Prefix))
	if s == "" {
		return "", posagent.Invalidf("network printer: empty address (want tcp:HOST[:PORT])")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		// No port: a bare host or a bracketed IPv6 address.
		host, port = s, strconv.Itoa(DefaultPort)
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return "", posagent.Invalidf("network printer: %q is not HOST[:PORT]", s)
			}
			host = s[1 : len(s)-1]
		}
		if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
			return "", posagent.Invalidf("network printer: %q is not HOST[:PORT]", s)
		}
	}
	if host == "" || strings.ContainsAny(host, " /") {
		return "", posagent.Invalidf("network printer: %q has no valid host", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", posagent.Invalidf("network printer: port %q is not 1 to 65535", port)
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// Open connects to the printer at addr (HOST[:PORT], with or without the tcp: prefix).
// Without WaitForDevice it fails when the printer does not take the connection, with an
// error wrapping serial.ErrNotFound for a refused or unreachable address.
func Open(ctx context.Context, addr string, opt connport.Options) (*connport.Port, error) {
	hostport, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	if opt.What == "" {
		opt.What = Prefix + hostport
	}
	return connport.Open(ctx, Dialer(hostport), opt)
}

// Dialer returns the dial function for host:port: TCP with keep-alive (a printer whose
// cable is pulled is noticed within a minute even while idle) and no Nagle delay (status
// requests are three bytes).
func Dialer(hostport string) connport.DialFunc {
	return func(ctx context.Context) (connport.Conn, string, error) {
		d := net.Dialer{KeepAlive: 15 * time.Second}
		c, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			if connport.Gone(err) || isRefused(err) {
				return nil, hostport, fmt.Errorf("network printer %s: %w: %v", hostport, serial.ErrNotFound, err)
			}
			return nil, hostport, fmt.Errorf("network printer %s: %w", hostport, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		return c, c.RemoteAddr().String(), nil
	}
}
