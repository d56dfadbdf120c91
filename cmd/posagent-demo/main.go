// Command posagent-demo is `make demo`: it starts the whole stack on loopback in a fresh
// temporary directory (acquirerd on SQLite, possim's simulated scanner, printer and
// display, and posagent run with configs/demo.yaml), drives a scripted checkout session
// through the agent's local API and possim's control API, and prints what happened:
// online sales with different wallets, a decline, a merchant-presented QR sale, an
// acquirer outage with sales stored offline (and refusals by the policy), then recovery
// and the backlog synced.
//
//	posagent-demo --bin bin [--config configs/demo.yaml] [--keep]
//
// With --keep (make demo KEEP=1) everything keeps running until Ctrl-C, with the commands
// to talk to it printed. Nothing is installed; everything stays in the temporary directory.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

const (
	terminal = "DEMO-T1"
	token    = "demo-token-change-me-0123456789"

	wechat = "134567890123456789"
	alipay = "281234567890123456"
	ecny   = "0123456789012345678"
	cpm    = "hQVDUFYwMWFWTwigAAADMwEBAlcRYmNgAQBxNnLSMSIBAAABiAFfNAEAYzOfJghWite85mtxi58nAYCfEBEHAAEDoAAAAQgwMDAwMDAwMZ82AhEiggIAAJ83BCJgSI4="
)

func main() {
	bin := flag.String("bin", "bin", "directory with posagent, acquirerd and possim")
	config := flag.String("config", "configs/demo.yaml", "the agent's config")
	keep := flag.Bool("keep", os.Getenv("KEEP") != "" && os.Getenv("KEEP") != "0", "keep everything running until Ctrl-C (env KEEP=1)")
	dirFlag := flag.String("dir", "", "work directory (default: a new temporary directory)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{bin: *bin, keep: *keep}
	err := d.run(ctx, *config, *dirFlag)
	d.stopAll()
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		if d.dir != "" {
			fmt.Fprintf(os.Stderr, "demo: logs in %s/*.log\n", d.dir)
		}
		os.Exit(1)
	}
}

type demo struct {
	bin, dir    string
	keep        bool
	procs       []*proc
	acq         *proc
	acqAddr     string
	api, simURL string
	step        int
}

type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// start runs a program from bin with its output in DIR/NAME.log.
func (d *demo) start(name string, stdout io.Writer, args ...string) (*proc, error) {
	exe, err := filepath.Abs(filepath.Join(d.bin, args[0]))
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, args[1:]...)
	cmd.Dir = d.dir
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(logf, stdout)
	}
	cmd.Env = append(os.Environ(), "POSAGENT_API_TOKEN="+token, "POSAGENT_ACQUIRER=http://"+d.acqAddr, "POSAGENT_LISTEN=127.0.0.1:0")
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w (run 'make build' first)", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	d.procs = append(d.procs, p)
	return p, nil
}

// stop sends SIGTERM and waits (SIGKILL after 10 s).
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (d *demo) stopAll() {
	for i := len(d.procs) - 1; i >= 0; i-- {
		d.procs[i].stop()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (d *demo) say(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func (d *demo) chapter(title string) {
	d.step++
	fmt.Printf("\n== %d. %s\n", d.step, title)
}

func (d *demo) run(ctx context.Context, config, dir string) error {
	var err error
	if dir == "" {
		if dir, err = os.MkdirTemp("", "posagent-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	d.dir = dir
	cfgData, err := os.ReadFile(config)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "posagent.yaml"), cfgData, 0o600); err != nil {
		return err
	}
	d.say("posagent demo: everything runs on loopback in %s", dir)

	// The acquirer: register the terminal (its secret goes to the terminal's key file),
	// then serve.
	var out bytes.Buffer
	add := exec.Command(filepath.Join(d.bin, "acquirerd"), "terminals", "add", terminal, "--db", "sqlite:"+filepath.Join(dir, "acquirer.db"), "--offline-max", "20000")
	add.Stdout, add.Stderr = &out, &out
	if err := add.Run(); err != nil {
		return fmt.Errorf("acquirerd terminals add: %v: %s (run 'make build' first)", err, out.String())
	}
	secret := regexp.MustCompile(`(?m)^[0-9a-f]{64}$`).FindString(out.String())
	if secret == "" {
		return fmt.Errorf("acquirerd terminals add printed no secret: %s", out.String())
	}
	if err := os.WriteFile(filepath.Join(dir, "terminal.key"), []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	if d.acqAddr, err = freeAddr(); err != nil {
		return err
	}
	if err := d.startAcquirer(); err != nil {
		return err
	}
	d.say("acquirerd   http://%s (SQLite %s/acquirer.db), terminal %s registered", d.acqAddr, dir, terminal)

	// The peripherals.
	if _, err := d.start("possim", nil, "possim", "--dir", filepath.Join(dir, "sim"), "--paper-dots", "384"); err != nil {
		return err
	}
	addr, err := waitFile(ctx, filepath.Join(dir, "sim", "control.addr"))
	if err != nil {
		return fmt.Errorf("possim: %w", err)
	}
	d.simURL = "http://" + strings.TrimSpace(addr)
	d.say("possim      scanner, printer (58 mm), display on ptys in %s/sim; control %s", dir, d.simURL)

	// The agent.
	ready := newLineWaiter("posagent ready on ")
	if _, err := d.start("posagent", ready, "posagent", "run", "--config", "posagent.yaml"); err != nil {
		return err
	}
	started := time.Now()
	if d.api, err = ready.wait(ctx, 20*time.Second); err != nil {
		return fmt.Errorf("posagent did not start: %w", err)
	}
	d.say("posagent    %s ready in %s (local API, token in POSAGENT_API_TOKEN)", d.api, time.Since(started).Round(time.Millisecond))

	if err := d.story(ctx); err != nil {
		return err
	}
	d.say("\nReceipts the simulated printer rendered: %s/sim/printer-job-*.txt (and .png)", dir)
	d.say("Logs: %s/{acquirerd,possim,posagent}.log", dir)
	if !d.keep {
		d.say("Stopping everything (make demo KEEP=1 leaves it running).")
		return nil
	}
	d.say("\nEverything keeps running; Ctrl-C stops it. Try:")
	d.say("  curl -s -H 'Authorization: Bearer %s' %s/v1/status", token, d.api)
	d.say("  curl -sN -H 'Authorization: Bearer %s' %s/v1/events", token, d.api)
	d.say("  curl -s -H 'Authorization: Bearer %s' -d '{\"amount\":1250,\"currency\":\"CNY\",\"idempotency_key\":\"my-1\",\"mode\":\"scan\"}' %s/v1/payments", token, d.api)
	d.say("  curl -s -d '{\"code\":\"%s\",\"aim\":\"]Q1\"}' %s/scanner/scan", wechat, d.simURL)
	<-ctx.Done()
	return nil
}

func (d *demo) startAcquirer() error {
	p, err := d.start("acquirerd", nil, "acquirerd", "--listen", d.acqAddr, "--db", "sqlite:"+filepath.Join(d.dir, "acquirer.db"))
	if err != nil {
		return err
	}
	d.acq = p
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.acqAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("acquirerd does not listen on %s", d.acqAddr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// payment is what the demo reads of a payment.
type payment struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Amount     int64  `json:"amount"`
	Scheme     string `json:"scheme"`
	SchemeName string `json:"scheme_name"`
	Credential string `json:"credential_masked"`
	Offline    bool   `json:"offline"`
	Sequence   uint64 `json:"sequence"`
	QR         string `json:"qr"`
	Order      string `json:"order_reference"`
	Error      *struct {
		Code, Message string
	} `json:"error"`
	Receipt *struct {
		Printed int    `json:"printed"`
		Error   string `json:"error"`
	} `json:"receipt"`
}

func (d *demo) story(ctx context.Context) error {
	n := 0
	key := func() string { n++; return fmt.Sprintf("demo-%d-%d", time.Now().Unix(), n) }

	d.chapter("Online sales, one wallet after another")
	for _, s := range []struct {
		amount int64
		code   string
	}{{1250, wechat}, {880, alipay}, {2300, cpm}, {660, ecny}} {
		if _, err := d.sale(ctx, key(), s.amount, s.code); err != nil {
			return err
		}
	}

	d.chapter("A decline (the acquirer declines amounts ending in 51)")
	if _, err := d.sale(ctx, key(), 1251, wechat); err != nil {
		return err
	}

	d.chapter("Merchant-presented: the terminal shows a dynamic EMV QR code, the customer's wallet pays it")
	p, err := d.create(ctx, key(), 2372, "qr")
	if err != nil {
		return err
	}
	d.say("  QR for CNY 23.72, order %s: %s", p.Order, short(p.QR, 60))
	d.say("  display: %s", d.screenWhen(ctx, func(sc string) bool { return strings.Contains(sc, "SCAN QR TO PAY") }))
	if p, err = d.waitDone(ctx, p.ID); err != nil {
		return err
	}
	d.report(p, 0)

	d.chapter("Acquirer outage: acquirerd stops")
	d.acq.stop()
	if err := d.waitOnline(ctx, false); err != nil {
		return err
	}
	d.say("  the agent's pings fail: offline (GET /v1/status says acquirer.online false)")
	for _, s := range []struct {
		amount int64
		code   string
	}{{4500, cpm}, {1800, cpm}, {990, wechat}, {30000, cpm}} {
		if _, err := d.sale(ctx, key(), s.amount, s.code); err != nil {
			return err
		}
	}

	d.chapter("Recovery: acquirerd is back; the agent uploads the backlog and the results come back")
	if err := d.startAcquirer(); err != nil {
		return err
	}
	start := time.Now()
	if err := d.waitOnline(ctx, true); err != nil {
		return err
	}
	var st struct {
		Journal struct {
			Outstanding int `json:"outstanding"`
			Unacked     int `json:"unacked"`
		} `json:"journal"`
		Sync struct {
			HighWater uint64 `json:"high_water"`
		} `json:"sync"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := d.api2(ctx, "GET", "/v1/status", nil, &st); err != nil {
			return err
		}
		if st.Journal.Outstanding == 0 && st.Journal.Unacked == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("backlog not synced in 30 s: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.say("  backlog synced in %s: the acquirer holds every sale up to sequence %d; nothing outstanding offline",
		time.Since(start).Round(10*time.Millisecond), st.Sync.HighWater)
	return nil
}

// sale opens a customer-presented payment, scans code on the simulated scanner and
// reports the outcome.
func (d *demo) sale(ctx context.Context, key string, amount int64, code string) (*payment, error) {
	p, err := d.create(ctx, key, amount, "scan")
	if err != nil {
		return nil, err
	}
	time.Sleep(150 * time.Millisecond) // the customer reads the display
	scanned := time.Now()
	if err := d.post(ctx, d.simURL+"/scanner/scan", map[string]string{"code": code, "aim": "]Q1"}); err != nil {
		return nil, err
	}
	if p, err = d.waitDone(ctx, p.ID); err != nil {
		return nil, err
	}
	d.report(p, time.Since(scanned))
	return p, nil
}

func (d *demo) create(ctx context.Context, key string, amount int64, mode string) (*payment, error) {
	var p payment
	err := d.api2(ctx, "POST", "/v1/payments", map[string]any{"amount": amount, "currency": "CNY", "idempotency_key": key, "mode": mode,
		"reference": strings.ToUpper(key[len(key)-6:])}, &p)
	return &p, err
}

func (d *demo) report(p *payment, took time.Duration) {
	what := p.SchemeName
	if what == "" {
		what = p.Scheme
	}
	if p.Credential != "" {
		what += " " + short(p.Credential, 22)
	}
	line := fmt.Sprintf("  CNY %7.2f  %-44s → %s", float64(p.Amount)/100, what, strings.ToUpper(p.State))
	if p.Offline {
		line += " (offline, confirmed later)"
	}
	if p.Error != nil {
		line += ": " + p.Error.Message
	}
	if took > 0 {
		line += fmt.Sprintf("  [%s]", took.Round(time.Millisecond))
	}
	if p.Sequence > 0 {
		line += fmt.Sprintf("  sale #%d", p.Sequence)
	}
	d.say("%s", line)
	d.say("      display: %s", d.screenWhen(context.Background(), func(sc string) bool { return settled(sc, p) }))
}

func (d *demo) waitDone(ctx context.Context, id string) (*payment, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var p payment
		if err := d.api2(ctx, "GET", "/v1/payments/"+id, nil, &p); err != nil {
			return nil, err
		}
		if p.State != "waiting" && p.State != "authorizing" {
			return &p, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("payment %s still %s after 30 s", id, p.State)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (d *demo) waitOnline(ctx context.Context, want bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Acquirer struct {
				Online bool `json:"online"`
			} `json:"acquirer"`
		}
		if err := d.api2(ctx, "GET", "/v1/status", nil, &st); err != nil {
			return err
		}
		if st.Acquirer.Online == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent did not see the acquirer online=%v in 30 s", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// transitional are the first lines of the screens a payment shows on its way: a final
// state's screen replaces them, a moment after the state is published.
var transitional = []string{"Scan your code", "PROCESSING...", "CHECKING PAYMENT", "CONFIRM ON YOUR PHONE", "SCAN QR TO PAY"}

// settled reports whether screen (as screen formats it) is the one the display shows for
// p's final state: not a screen of the way there, and for an approved payment, the
// approval of this payment's amount (not the previous payment's).
func settled(screen string, p *payment) bool {
	first, second, _ := strings.Cut(strings.TrimSuffix(strings.TrimPrefix(screen, "["), "]"), " / ")
	for _, t := range transitional {
		if strings.HasPrefix(first, t) {
			return false
		}
	}
	// A final screen has no "TOTAL" line: one is the way there's second line, not yet
	// overwritten (the display is read while it is being written).
	if strings.HasPrefix(strings.ToUpper(second), "TOTAL") {
		return false
	}
	switch p.State {
	case "approved", "stored", "uploading":
		return strings.HasPrefix(first, "APPROVED") && strings.Contains(screen, fmt.Sprintf("%d.%02d", p.Amount/100, p.Amount%100))
	case "canceled":
		return strings.HasPrefix(first, "CANCELED")
	}
	return first != ""
}

// screenWhen waits (up to 3 s) for the display to show a screen that ok accepts: the
// display is written at the serial line's pace, after the state the demo has just read.
// It returns the screen shown then, or the last one read.
func (d *demo) screenWhen(ctx context.Context, ok func(string) bool) string {
	deadline := time.Now().Add(3 * time.Second)
	prev := ""
	for {
		sc := d.screen(ctx)
		// Accepted twice 100 ms apart: the display has finished writing it.
		if (ok(sc) && sc == prev) || time.Now().After(deadline) || ctx.Err() != nil {
			return sc
		}
		prev = sc
		time.Sleep(100 * time.Millisecond)
	}
}

func (d *demo) screen(ctx context.Context) string {
	var s struct {
		Lines []string `json:"lines"`
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", d.simURL+"/display", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&s)
	for i := range s.Lines {
		s.Lines[i] = strings.TrimRight(s.Lines[i], " ")
	}
	return "[" + strings.Join(s.Lines, " / ") + "]"
}

func (d *demo) api2(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(ctx, method, d.api+path, r)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, data)
	}
	return json.Unmarshal(data, out)
}

func (d *demo) post(ctx context.Context, url string, body any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, data)
	}
	return nil
}

func short(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

func waitFile(ctx context.Context, path string) (string, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(b), nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s did not appear", path)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// lineWaiter watches a program's output for a line with a prefix and hands over the rest.
type lineWaiter struct {
	prefix string
	pw     *io.PipeWriter
	found  chan string
}

func newLineWaiter(prefix string) *lineWaiter {
	pr, pw := io.Pipe()
	w := &lineWaiter{prefix: prefix, pw: pw, found: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				select {
				case w.found <- strings.TrimSpace(rest):
				default:
				}
			}
		}
		io.Copy(io.Discard, pr)
	}()
	return w
}

func (w *lineWaiter) Write(p []byte) (int, error) { return w.pw.Write(p) }

func (w *lineWaiter) wait(ctx context.Context, d time.Duration) (string, error) {
	select {
	case s := <-w.found:
		return s, nil
	case <-time.After(d):
		return "", errors.New("timed out")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}
