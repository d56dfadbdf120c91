package main

import (
	"bytes"
	"context"
	"fmt"
	"github.com/posagent/posagent/internal/testio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

func TestRun_ConfigErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("terminal: T1\nacquirer: {url: http://x}\napi: {token: 0123456789abcdef0}\ndevices: {printer: {port: /dev/ttyUSB0, baud: 7}}\n"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"run"}, 2, "run needs --config"},
		{[]string{"run", "--config", filepath.Join(dir, "missing.yaml")}, 1, "open config"},
		{[]string{"run", "--config", bad}, 1, `devices.printer.baud: "7"`},
	} {
		code, _, stderr := run(t, "", c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

func TestRun_ServesAndStops(t *testing.T) {
	dir := t.TempDir()
	secret := bytes.Repeat([]byte{9}, offline.KeySize)
	keyFile := filepath.Join(dir, "key")
	os.WriteFile(keyFile, []byte(fmt.Sprintf("%x\n", secret)), 0o600)
	st, err := acquirer.OpenSQLite(filepath.Join(dir, "acq.db"), bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.AddTerminal(context.Background(), "T9", secret, wire.Policy{})
	acq := httptest.NewServer(acquirer.New(st, acquirer.Options{Log: slog.New(slog.DiscardHandler)}))
	defer acq.Close()
	cfgPath := filepath.Join(dir, "agent.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf("terminal: T9\nstate_dir: %s\nkey_file: %s\napi: {listen: \"127.0.0.1:0\"}\nacquirer: {url: %s}\nlog: {format: json}\n",
		filepath.Join(dir, "state"), keyFile, acq.URL)), 0o600)
	t.Setenv("POSAGENT_API_TOKEN", "run-test-token-0123456789")
	// systemd's notification socket: the agent says READY=1, pings the watchdog
	// (WatchdogSec=200ms: every 100 ms), and says STOPPING=1.
	sock := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	nextNote := func(prefix string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case n, ok := <-notes:
				if !ok {
					t.Fatalf("no %s: the socket closed", prefix)
				}
				if strings.HasPrefix(n, prefix) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s sent to systemd", prefix)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testio.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- NewMain(strings.NewReader(""), &stdout, &stderr).Run(ctx, []string{"run", "--config", cfgPath})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "ready on") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not ready: %s %s", stdout.String(), stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	nextNote("READY=1")
	nextNote("WATCHDOG=1")
	url := strings.TrimSpace(strings.TrimPrefix(stdout.String(), "posagent ready on "))
	req, _ := http.NewRequest("GET", url+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer run-test-token-0123456789")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"terminal":"T9"`) {
		t.Errorf("status: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}
	nextNote("STOPPING=1")
	if strings.Contains(stderr.String(), "run-test-token") {
		t.Error("the token reached the log")
	}
}
