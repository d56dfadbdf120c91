package possim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/qr"
)

var quiet = slog.New(slog.DiscardHandler)

// startSim runs a simulator with its control interface for the test; it returns the
// simulator and the control base URL.
func startSim(t testing.TB) (*Sim, string) {
	t.Helper()
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan struct{}, 2)
	go func() { s.Run(ctx); done <- struct{}{} }()
	go func() { s.Control(ctx, "", ready); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return s, "http://" + <-ready
}

func openPort(t testing.TB, path string, opt serial.Options) *serial.Port {
	t.Helper()
	opt.Logger = quiet
	if opt.Baud == 0 {
		opt.Baud = 115200
	}
	p, err := serial.Open(context.Background(), serial.Locator{Path: path}, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func post(t testing.TB, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not after 5 s", what)
}

func TestSim_Links(t *testing.T) {
	s, base := startSim(t)
	for _, n := range []string{PrinterName, ScannerName, DisplayName} {
		target, err := os.Readlink(filepath.Join(s.Dir, n))
		if err != nil || !strings.HasPrefix(target, "/dev/pts/") {
			t.Errorf("%s link -> %q, %v", n, target, err)
		}
	}
	addr, err := os.ReadFile(filepath.Join(s.Dir, ControlAddrFile))
	if err != nil || "http://"+strings.TrimSpace(string(addr)) != base {
		t.Errorf("control.addr = %q, %v; control at %s", addr, err, base)
	}
	if code, _ := post(t, base+"/modem/unplug", ""); code != http.StatusNotFound {
		t.Errorf("unplug unknown device: status %d, want 404", code)
	}
	if code, _ := post(t, base+"/printer/state", `{"state":"on-fire"}`); code != http.StatusBadRequest {
		t.Errorf("unknown printer state: status %d, want 400", code)
	}
}

func TestSim_Display(t *testing.T) {
	for _, proto := range []display.Protocol{display.CD5220, display.Epson} {
		t.Run(string(proto), func(t *testing.T) {
			s, base := startSim(t)
			port := openPort(t, s.Path(DisplayName), serial.Options{})
			d, err := display.New(port, proto)
			if err != nil {
				t.Fatal(err)
			}
			want := display.DeclinedScreen("insufficient funds in account")
			if err := d.Init(); err != nil {
				t.Fatal(err)
			}
			if err := d.Show(display.Screen{"old text that is long", "more old text here"}); err != nil {
				t.Fatal(err)
			}
			if err := d.Show(want); err != nil {
				t.Fatal(err)
			}
			if err := d.Brightness(2); err != nil {
				t.Fatal(err)
			}
			eventually(t, "display shows the screen", func() bool {
				sc := s.Display.Screen()
				return strings.TrimRight(sc[0], " ") == want[0] && strings.TrimRight(sc[1], " ") == want[1] && s.Display.Brightness() == 2
			})
			resp, err := http.Get(base + "/display")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got struct {
				Lines      []string `json:"lines"`
				Brightness int      `json:"brightness"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if len(got.Lines) != 2 || strings.TrimRight(got.Lines[1], " ") != want[1] || got.Brightness != 2 {
				t.Errorf("GET /display = %+v, want %q", got, want)
			}
		})
	}
}

func TestSim_Scanner(t *testing.T) {
	s, base := startSim(t)
	port := openPort(t, s.Path(ScannerName), serial.Options{})
	sc, err := scanner.New(port, scanner.Config{Frame: scanner.FrameConfig{Suffix: scanner.SuffixCRLF}, Logger: quiet, Trigger: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Noise first, then a code sent in 3-byte pieces 5 ms apart (partial reads).
	if code, body := post(t, base+"/scanner/noise", `{"bytes":40,"suffix":"crlf"}`); code != 200 {
		t.Fatalf("noise: %d %s", code, body)
	}
	if code, body := post(t, base+"/scanner/scan", `{"code":"134567890123456789","suffix":"crlf","aim":"]Q1","chunk":3,"gap_ms":5}`); code != 200 {
		t.Fatalf("scan: %d %s", code, body)
	}
	got, err := sc.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != "134567890123456789" || got.Classification.Kind != qr.KindWalletCode || got.Classification.Scheme != "wechat-pay" || got.Classification.AIM != "]Q1" {
		t.Errorf("scan = %q %+v", got.Code, got.Classification)
	}
	if st := sc.Stats(); st.Rejected != 1 || st.Codes != 1 {
		t.Errorf("stats %+v, want 1 rejected (the noise) and 1 code", st)
	}
	if tr := s.Scanner.Triggers(); len(tr) == 0 || tr[0] != "on" {
		t.Errorf("triggers seen by the scanner: %v, want on first", tr)
	}
}

func TestSim_ScannerReplug(t *testing.T) {
	s, base := startSim(t)
	port := openPort(t, s.Path(ScannerName), serial.Options{})
	sc, err := scanner.New(port, scanner.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tty := s.TTY(ScannerName)
	type result struct {
		scan scanner.Scan
		err  error
	}
	res := make(chan result, 1)
	go func() {
		sc, err := sc.Next(ctx)
		res <- result{sc, err}
	}()
	if code, body := post(t, base+"/scanner/unplug", `{"down_ms":100}`); code != 200 {
		t.Fatalf("unplug: %d %s", code, body)
	}
	eventually(t, "scanner replugged and port reconnected", func() bool {
		return s.TTY(ScannerName) != "" && port.Connected() && port.Name() == s.TTY(ScannerName)
	})
	if s.Devices()[ScannerName].Plugs != 2 {
		t.Errorf("scanner plugs = %d, want 2 (was on %s)", s.Devices()[ScannerName].Plugs, tty)
	}
	if code, body := post(t, base+"/scanner/scan", `{"code":"https://qr.alipay.com/abc123"}`); code != 200 {
		t.Fatalf("scan: %d %s", code, body)
	}
	r := <-res
	if r.err != nil || r.scan.Code != "https://qr.alipay.com/abc123" {
		t.Errorf("Next across the replug = %q, %v", r.scan.Code, r.err)
	}
}

func TestSim_PrinterReplugMidJob(t *testing.T) {
	s, base := startSim(t)
	port := openPort(t, s.Path(PrinterName), serial.Options{Baud: 9600, BytePace: 100 * time.Microsecond})
	// A long job (about 0.6 s on the line), unplugged after 100 ms.
	job := append([]byte("\x1b@"), bytes.Repeat([]byte("a line of the receipt text\n"), 200)...)
	job = append(job, 0x1d, 'V', 0)
	go func() {
		time.Sleep(100 * time.Millisecond)
		post(t, base+"/printer/unplug", `{"down_ms":50}`)
	}()
	n, err := port.Write(job)
	if !errors.Is(err, serial.ErrDisconnected) || n == 0 || n == len(job) {
		t.Fatalf("Write across unplug = %d of %d, %v; want part and ErrDisconnected", n, len(job), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := port.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	// The printer lost the half job; the host prints it again, whole.
	if _, err := port.Write([]byte("\x1b@reprint\n\x1dV\x00")); err != nil {
		t.Fatalf("Write after replug: %v", err)
	}
	eventually(t, "the reprint is printed", func() bool {
		for _, j := range s.Printer.Jobs() {
			for _, l := range j.Lines {
				if strings.Contains(l, "reprint") {
					return true
				}
			}
		}
		return false
	})
	resp, err := http.Get(base + "/printer/jobs")
	if err != nil {
		t.Fatal(err)
	}
	var jobs struct {
		Jobs []map[string]any `json:"jobs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&jobs)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || len(jobs.Jobs) == 0 {
		t.Fatalf("GET /printer/jobs: %d %v %v", resp.StatusCode, err, jobs)
	}
	// The control API's JSON names are snake_case, as its --help documents them.
	for k := range jobs.Jobs[0] {
		if k != strings.ToLower(k) {
			t.Errorf("GET /printer/jobs: key %q is not snake_case", k)
		}
	}
	if _, ok := jobs.Jobs[0]["lines"]; !ok {
		t.Errorf("GET /printer/jobs: no \"lines\" in %v", jobs.Jobs[0])
	}
}

// TestSim_SecondOnSameDir: a second simulator started on the directory of a running one
// takes its links over; stopping the first then leaves the second's links and control.addr.
func TestSim_SecondOnSameDir(t *testing.T) {
	dir := t.TempDir()
	start := func() (*Sim, context.CancelFunc, chan struct{}) {
		s, err := New(dir)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan struct{}, 2)
		go func() { s.Run(ctx); done <- struct{}{} }()
		go func() { s.Control(ctx, "", ready); done <- struct{}{} }()
		<-ready
		return s, cancel, done
	}
	_, cancel1, done1 := start()
	second, cancel2, done2 := start()
	t.Cleanup(func() { cancel2(); <-done2; <-done2 })
	want, err := os.ReadFile(filepath.Join(dir, ControlAddrFile))
	if err != nil {
		t.Fatal(err)
	}
	cancel1()
	<-done1
	<-done1
	for _, n := range []string{PrinterName, ScannerName, DisplayName, LEDName} {
		got, err := os.Readlink(filepath.Join(dir, n))
		if want := second.TTY(n); err != nil || got != want {
			t.Errorf("%s link after the first simulator stopped: %q, %v; want %q", n, got, err, want)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, ControlAddrFile))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("control.addr after the first simulator stopped: %q, %v; want %q", got, err, want)
	}
}
