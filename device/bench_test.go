package device

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent"
	displaydrv "github.com/posagent/posagent/drivers/display"
	"github.com/posagent/posagent/drivers/scanner"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/qr"
)

// benchPolicy lets every benchmark sale be taken offline (the test policy stops at 10).
func benchPolicy(tb testing.TB) offline.Policy {
	tb.Helper()
	pol, err := offline.ParsePolicy([]byte("methods: [emv-cpm]\nmax_count: 1000000\nlimits:\n  CNY: {per_transaction: \"500.00\", outstanding: \"100000000.00\"}\n"))
	if err != nil {
		tb.Fatal(err)
	}
	return pol
}

// percentile returns the p-th percentile (0-100) of d, nearest rank.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkCheckout_ScanToApproved is what the customer and the cashier wait for: from
// the scanner's last byte on the line (possim's pty write returned) to "approved" on the
// customer display (possim's screen) and to the payment's "approved" (online) or "stored"
// (offline) event read by a client of GET /v1/events, through the whole stack: pty,
// scanner driver, checkout, journal (SQLite, synchronous=FULL), uplink, acquirer endpoint
// over loopback HTTP, display driver (paced at the display's 9600 baud), SSE.
//
// The acquirer's own time (its handler, wrapped and timed in the same run) is subtracted
// per sale: display-ms and event-ms are the agent's share; acquirer-ms is the handler's.
// The offline path does not call the acquirer (the agent knows it is down). Receipts are
// off, so a receipt printing in the background does not overlap the next sale.
//
// display-wire-ms is the time the approved screen's first row takes on the display's line
// (bytes × 10 / baud: a start bit, 8 data bits, a stop bit; the display time ends when that
// row reads APPROVED), a floor of the display's time that no agent can go below;
// display-agent-p50/p99-ms are the display's time less it.
// The agent's own time is otherwise its journal's durable commits (offline
// BenchmarkStore's floor-p99-µs is one such fsync on the same disk) and its CPU.
func BenchmarkCheckout_ScanToApproved(b *testing.B) {
	for _, path := range []string{"online", "offline"} {
		b.Run(path, func(b *testing.B) {
			e := newEnv(b, func(c *Config) {
				c.Checkout.MerchantCopy, c.Checkout.CustomerCopy = false, false
				c.Checkout.ScanTimeout = Dur(time.Minute)
				c.Offline = benchPolicy(b)
			})
			ev := e.subscribe("")
			code, want, wantScreen := wechatCode, PaymentApproved, "APPROVED"
			if path == "offline" {
				e.down.Store(true)
				ev.next(b, "acquirer", func(m map[string]any) bool { return m["online"] == false })
				code, want, wantScreen = cpmCode, PaymentStored, "APPROVED (OFFLINE)"
			}
			var display, event, acq []time.Duration
			proto, err := displaydrv.ParseProtocol(e.cfg.Devices.Display.Protocol)
			if err != nil {
				b.Fatal(err)
			}
			wireBytes := len(displaydrv.ShowCommand(proto, displaydrv.ApprovedScreen(posagent.Amount{Minor: 100}))) / 2 // a row of two
			wire := time.Duration(wireBytes*10) * time.Second / time.Duration(e.cfg.Devices.Display.Baud)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				amount := int64(100 + (i%100)*100) // whole yuan: no simulated decline or delay
				p := e.create(amount, fmt.Sprintf("bench-%s-%d", path, i), ModeScan)
				e.waitPhase(PhaseWaitingScan)
				e.waitScreen("Scan your code")
				acq0 := e.authTime.Load()
				b.StartTimer()
				e.scan(code)
				t0 := time.Now()
				var tDisplay, tEvent time.Time
				deadline := t0.Add(10 * time.Second)
				for tDisplay.IsZero() || tEvent.IsZero() {
					select {
					case r := <-ev.events:
						if m, _ := r.Data.(map[string]any); r.Type == "payment" && m["id"] == p.ID && m["state"] == string(want) {
							tEvent = r.at
						}
						continue
					default:
					}
					if tDisplay.IsZero() && strings.HasPrefix(e.screen(), wantScreen+" |") {
						tDisplay = time.Now()
					}
					if time.Now().After(deadline) {
						b.Fatalf("sale %d: display %q, event seen %v\n%s", i, e.screen(), !tEvent.IsZero(), e.logs())
					}
					time.Sleep(50 * time.Microsecond)
				}
				b.StopTimer()
				a := time.Duration(e.authTime.Load() - acq0)
				display = append(display, tDisplay.Sub(t0)-a)
				event = append(event, tEvent.Sub(t0)-a)
				acq = append(acq, a)
				e.waitPhase(PhaseIdle)
				b.StartTimer()
			}
			b.StopTimer()
			b.ReportMetric(ms(percentile(display, 50)), "display-p50-ms")
			b.ReportMetric(ms(percentile(display, 99)), "display-p99-ms")
			b.ReportMetric(ms(wire), "display-wire-ms")
			b.ReportMetric(ms(percentile(display, 50)-wire), "display-agent-p50-ms")
			b.ReportMetric(ms(percentile(display, 99)-wire), "display-agent-p99-ms")
			b.ReportMetric(ms(percentile(event, 50)), "event-p50-ms")
			b.ReportMetric(ms(percentile(event, 99)), "event-p99-ms")
			if path == "online" {
				b.ReportMetric(ms(percentile(acq, 50)), "acquirer-p50-ms")
				b.ReportMetric(ms(percentile(acq, 99)), "acquirer-p99-ms")
			}
		})
	}
}

// heapInUse is the Go heap in use after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkAgent_Memory reports the agent's Go heap in use after GC, at rest (a second
// after ready, no sale) and after 10,000 online sales, with the production ping and sync
// intervals (10 s, 30 s: the backlog of approved sales goes up in two rounds). The
// simulator and the acquirer run in the same process, so the heap measured before the
// agent starts is subtracted (the acquirer keeps its state in SQLite, whose memory, like
// the agent's journal's, is C memory and not in the Go heap). The agent logs at info
// level to nowhere, as a terminal's log would not be kept in its memory.
//
// 10,000 sales through HTTP, the pty and the 9600-baud display would take over 15
// minutes, so they are driven one level down: Agent.CreatePayment and Agent.Scan with
// the code's classification, then the session's end is awaited; the checkout state
// machine, journal (append and transition), online authorization over loopback HTTP to
// the acquirer, payment store, events (the ring keeps 1024), metrics and background sync
// are all real. The display is driven at 921600 baud to take its pacing out; no receipts
// (possim would keep 10,000 rendered jobs in this process). The state directory is on
// tmpfs (/dev/shm) when there is one: the heap does not depend on the disk, so sales/s is
// not a disk figure here (BenchmarkCheckout_ScanToApproved and offline's BenchmarkStore
// are). POSAGENT_BENCH_HEAPPROFILE=FILE writes the heap profile after the sales.
func BenchmarkAgent_Memory(b *testing.B) {
	const sales = 10000
	stateDir := ""
	if d, err := os.MkdirTemp("/dev/shm", "posagent-bench-"); err == nil {
		stateDir = d
		b.Cleanup(func() { os.RemoveAll(d) })
	}
	e := newEnvStopped(b, func(c *Config) {
		if stateDir != "" {
			c.StateDir = stateDir
		}
		c.Checkout.MerchantCopy, c.Checkout.CustomerCopy = false, false
		c.Checkout.ScanTimeout = Dur(time.Minute)
		c.Devices.Display.Baud = 921600
		c.Acquirer.PingInterval, c.Acquirer.SyncInterval = Dur(10*time.Second), Dur(30*time.Second)
	})
	e.quiet = true
	base := heapInUse()
	e.start()
	time.Sleep(time.Second)
	rest := heapInUse()

	a := e.agent
	ctx := context.Background()
	cls := qr.Classify(wechatCode)
	b.ResetTimer()
	start := time.Now()
	for i := range sales {
		p, _, err := a.CreatePayment(ctx, PaymentRequest{Amount: int64(100 + i%100*100), Currency: "CNY",
			IdempotencyKey: fmt.Sprintf("mem-%d", i), Reference: fmt.Sprintf("R-%d", i), Mode: ModeScan})
		if err != nil {
			b.Fatal(err)
		}
		a.mu.Lock()
		s := a.cur
		a.mu.Unlock()
		if s == nil || s.p.ID != p.ID {
			b.Fatalf("sale %d: not open", i)
		}
		a.Scan(scanner.Scan{Code: wechatCode, Classification: cls, At: time.Now()})
		<-s.done
		if got := a.snapshot(s.p); got.State != PaymentApproved {
			b.Fatalf("sale %d: %s %+v", i, got.State, got.Error)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := heapInUse()
	if f := os.Getenv("POSAGENT_BENCH_HEAPPROFILE"); f != "" {
		if w, err := os.Create(f); err == nil {
			pprof.WriteHeapProfile(w)
			w.Close()
		}
	}
	mib := func(v uint64) float64 { return float64(int64(v)-int64(base)) / (1 << 20) }
	b.ReportMetric(mib(rest), "heap-rest-MiB")
	b.ReportMetric(mib(after), "heap-10k-sales-MiB")
	b.ReportMetric(float64(sales)/elapsed.Seconds(), "sales/s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkAgent_Startup is the time to ready, as `posagent run` does it: the config file
// loaded and validated, the key and the journal (an existing one, with the earlier runs'
// state) and payment store opened, the scanner, printer and display (possim's ptys)
// opened, one ping to the acquirer, resume, the API listening. Stopping is not timed.
func BenchmarkAgent_Startup(b *testing.B) {
	e := newEnvStopped(b, nil)
	c := e.cfg
	conf := fmt.Sprintf(`terminal: %s
state_dir: %s
key_file: %s
api: {listen: "127.0.0.1:0", token: %q}
acquirer: {url: %q}
devices:
  scanner: {port: %q}
  printer: {port: %q, baud: 115200}
  display: {port: %q}
merchant: {name: CORNER SHOP, city: BEIJING, country: CN, mcc: "5411", accounts: ["26=D15600000000,05=A93FO3230Q"]}
log: {level: error}
`, c.Terminal, c.StateDir, c.KeyFile, c.API.Token, c.Acquirer.URL, c.Devices.Scanner.Port, c.Devices.Printer.Port, c.Devices.Display.Port)
	path := filepath.Join(e.dir, "posagent.yaml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	noenv := func(string) string { return "" }
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		cfg, err := LoadConfig(path, noenv)
		if err != nil {
			b.Fatal(err)
		}
		ready := make(chan struct{})
		a, err := New(context.Background(), cfg, Options{Log: discardLog(), Ready: func(string) { close(ready) }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		runErr := make(chan error, 1)
		go func() { runErr <- a.Run(ctx) }()
		select {
		case <-ready:
		case err := <-runErr:
			b.Fatalf("run: %v", err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		cancel()
		if err := <-runErr; err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(took, 50)), "ready-p50-ms")
	b.ReportMetric(ms(percentile(took, 99)), "ready-p99-ms")
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// BenchmarkRefund_RoundTrip is a refund's round trip online, as the POS app sees it:
// POST /v1/payments/{id}/refunds to its answer (journal append in the sales' chain, the
// acquirer's POST /v1/refunds over loopback HTTP, the journal's transition). The sale it
// refunds is made untimed; a sale's own figure is BenchmarkCheckout_ScanToApproved's.
func BenchmarkRefund_RoundTrip(b *testing.B) {
	e := newEnv(b, func(c *Config) {
		c.Checkout.MerchantCopy, c.Checkout.CustomerCopy = false, false
		c.Devices.Printer.Port = ""
	})
	var refunds []time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		amount := int64(1000 + (i%100)*100)
		p := e.create(amount, fmt.Sprintf("bench-rf-sale-%d", i), ModeScan)
		e.scan(wechatCode)
		got := e.wait(p.ID, done)
		if got.State != PaymentApproved {
			b.Fatalf("sale %d: %+v", i, got)
		}
		e.waitPhase(PhaseIdle)
		b.StartTimer()
		t1 := time.Now()
		var rf Refund
		if code := e.do("POST", "/v1/payments/"+p.ID+"/refunds", RefundRequest{Amount: 100, IdempotencyKey: fmt.Sprintf("bench-rf-%d", i)}, &rf); code != 201 || rf.State != "approved" {
			b.Fatalf("refund %d: %d %+v", i, code, rf)
		}
		refunds = append(refunds, time.Since(t1))
	}
	b.StopTimer()
	b.ReportMetric(ms(percentile(refunds, 50)), "refund-p50-ms")
	b.ReportMetric(ms(percentile(refunds, 99)), "refund-p99-ms")
	b.ReportMetric(0, "ns/op")
}
