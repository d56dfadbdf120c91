// Package device is the terminal runtime behind `posagent run`: the configuration, the
// checkout flow (an explicit state machine, see Phase), the peripherals, the uplink in the
// background, and the local API for the POS app (see api.go and openapi.yaml).
//
// Money safety comes from the journal (package offline), the one ledger: every sale is
// journaled before it is sent, and the POS app's payment lives beside its sale in the same
// SQLite file and changes in the same transaction, so a retried create is a look-up, an
// open payment survives a restart, and the two never disagree. The checkout's decisions
// are package checkout's pure state machine; this package performs them (session.go). A
// reconciler sends journaled reversals until acknowledged and resolves any sale left
// authorizing. Latency: what the customer and the cashier wait for (the display, the event
// stream) is done before anything that may be slow (the payment store, the receipts).
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/flock"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// Options are what the embedding program adds to the Config.
type Options struct {
	Log     *slog.Logger
	Version string
	// ShutdownGrace is how long Run waits, after its context ends, for a sale in flight to
	// reach its outcome (the authorization's own timeout bounds it); what is still in
	// flight then stays journaled and is resumed at the next start. 0: the auth timeout + 1 s.
	ShutdownGrace time.Duration
	// Ready, if set, gets the API's address once the agent serves it.
	Ready func(addr string)
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Agent is the running terminal.
type Agent struct {
	cfg Config
	opt Options
	log *slog.Logger
	now func() time.Time
	key *offline.Key

	logs *logRing // the last log lines, for the status page (status_log.go)

	journal    *offline.Journal
	lock       *flock.Lock
	client     *uplink.Client // sync, orders, pings
	authClient *uplink.Client // online authorization: few retries, the customer is waiting
	syncer     *uplink.Syncer
	dev        *peripherals
	events     *hub
	metrics    *metrics

	createMu sync.Mutex
	mu       sync.Mutex // guards phase, cur, stopping and the open payment's fields
	phase    Phase
	cur      *session
	stopping bool

	online    atomic.Bool
	skew      atomic.Int64 // the acquirer's clock minus ours, in nanoseconds (last ping)
	highWater atomic.Uint64
	resolving sync.Map // sale id → struct{}: sales a session is resolving
	refunding sync.Map // refund id → struct{}: refunds being sent now
	recKick   chan struct{}
	rebaseMu  sync.Mutex
	syncKick  chan struct{}
	syncMu    sync.Mutex
	lastSync  time.Time
	syncErr   string
	lastRep   uplink.Report

	stopCh  chan struct{}      // closed when shutdown starts: open payments stop waiting
	hardCtx context.Context    // canceled when the grace period is over
	hard    context.CancelFunc //
	wg      sync.WaitGroup
	started time.Time
}

// New opens the journal, the payment store and the peripherals.
func New(ctx context.Context, cfg Config, opt Options) (*Agent, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.ShutdownGrace == 0 {
		opt.ShutdownGrace = cfg.Acquirer.AuthTimeout.D() + time.Second
	}
	a := &Agent{cfg: cfg, opt: opt, log: opt.Log, now: opt.Now, phase: PhaseIdle, events: newHub(1024, opt.Now),
		syncKick: make(chan struct{}, 1), recKick: make(chan struct{}, 1), stopCh: make(chan struct{}), started: opt.Now()}
	a.logs, a.log = wrapLog(opt.Log) // the status page's log download and recent errors (status_log.go)
	a.metrics = newMetrics(a)
	a.hardCtx, a.hard = context.WithCancel(context.Background())
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	lock, err := flock.Acquire(cfg.Journal + ".lock")
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("journal %s: %w: another posagent (run or sync) is using it; stop it first", cfg.Journal, err)
	} else if err != nil {
		return nil, err
	}
	a.lock = lock
	key, err := offline.LoadKey(cfg.KeyFile, cfg.CreateKey)
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("key_file: %w", err)
	}
	a.key = key
	j, err := offline.Open(cfg.Journal, offline.Options{Key: key, Terminal: cfg.Terminal, Policy: cfg.Offline, Now: opt.Now, Retention: cfg.Maintenance.Retention.D()})
	var ce *offline.CorruptError
	if errors.As(err, &ce) {
		a.log.Error("journal was damaged and moved aside; offline sales are held until a technician releases them", "moved_to", ce.MovedTo)
		j, err = offline.Open(cfg.Journal, offline.Options{Key: key, Terminal: cfg.Terminal, Policy: cfg.Offline, Now: opt.Now, Retention: cfg.Maintenance.Retention.D()})
	}
	if err != nil {
		lock.Release()
		return nil, fmt.Errorf("open journal: %w", err)
	}
	a.journal = j
	if n, err := migratePaymentStore(ctx, j, filepath.Join(cfg.StateDir, "payments.db")); err != nil {
		a.closeStores()
		return nil, err
	} else if n > 0 {
		a.log.Info("payments moved from payments.db into the journal", "payments", n)
	}
	for _, c := range []**uplink.Client{&a.client, &a.authClient} {
		cl, err := uplink.New(cfg.Acquirer.URL, cfg.Terminal, key)
		if err != nil {
			a.closeStores()
			return nil, fmt.Errorf("acquirer.url: %w", err)
		}
		cl.HTTP.Timeout = cfg.Acquirer.RequestTimeout.D()
		cl.Now = a.signingNow
		*c = cl
	}
	// The customer is waiting: two attempts within the auth timeout, then the offline path.
	a.authClient.MaxAttempts = 2
	a.authClient.Backoff = uplink.FullJitter(50*time.Millisecond, 200*time.Millisecond)
	a.authClient.Breaker = uplink.NewBreaker(3, 10*time.Second)
	a.syncer = &uplink.Syncer{Journal: j, Client: a.client, Key: key, OnOutcome: a.onOutcome}
	a.dev, err = openPeripherals(ctx, cfg.Devices, a.log, func(st DeviceState) { a.events.publish("device", st) })
	if err != nil {
		a.closeStores()
		return nil, err
	}
	return a, nil
}

func (a *Agent) closeStores() {
	if err := a.journal.Close(); err != nil {
		a.log.Error("close journal", "err", err)
	}
	a.lock.Release()
}

// Run serves the local API, reads the scanner, pings and syncs until ctx ends, then shuts
// down gracefully: no new payments, the sale in flight gets ShutdownGrace to reach its
// outcome, and what is still open stays in the journal and the store for the next start.
func (a *Agent) Run(ctx context.Context) error {
	defer a.dev.Close()
	defer a.closeStores()
	// Is the acquirer there? One quick ping before taking sales decides the first path.
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err := a.ping(pctx)
	cancel()
	a.setOnline(err == nil, err)
	if hw, err := a.journal.SyncState(ctx, "high_water"); err == nil && hw != "" {
		if n, err := strconv.ParseUint(hw, 10, 64); err == nil {
			a.highWater.Store(n)
		}
	}
	if a.journal.NeedsRebase() != "" {
		if err := a.rebase(ctx); err != nil {
			a.log.Warn("journal: cannot continue the acquirer's chain yet; no sale until it can", "err", err)
		}
	}
	if err := a.resume(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", a.cfg.API.Listen)
	if err != nil {
		return fmt.Errorf("api.listen %s: %w", a.cfg.API.Listen, err)
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() {
		if a.cfg.API.TLSCert != "" {
			errc <- srv.ServeTLS(ln, a.cfg.API.TLSCert, a.cfg.API.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	bg, stopBG := context.WithCancel(context.Background())
	var bgwg sync.WaitGroup
	for _, f := range []func(context.Context){a.pingLoop, a.syncLoop, a.scanLoop, a.reconcileLoop, a.maintainLoop} {
		bgwg.Add(1)
		go func() { defer bgwg.Done(); f(bg) }()
	}
	a.log.Info("posagent ready", "api", ln.Addr().String(), "terminal", a.cfg.Terminal, "acquirer", a.cfg.Acquirer.URL,
		"online", a.online.Load(), "startup", time.Since(a.started).Round(time.Millisecond).String())
	a.events.publish("agent", map[string]any{"state": "ready", "version": a.opt.Version})
	if a.opt.Ready != nil {
		a.opt.Ready(ln.Addr().String())
	}
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	a.log.Info("shutting down")
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	close(a.stopCh)
	// Let the sale in flight finish, within the grace period.
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(a.opt.ShutdownGrace):
		a.log.Warn("sale still in flight at the end of the grace period; it is resumed at the next start")
		a.hard()
		<-done
	}
	a.hard()
	shctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	srv.Shutdown(shctx)
	cancel()
	stopBG()
	bgwg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Healthy reports whether the agent can do its job now: its journal answers (the systemd
// watchdog is pinged only while it does).
func (a *Agent) Healthy(ctx context.Context) error {
	if _, err := a.journal.Stats(ctx); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// setOnline records whether the acquirer answers; a change is an event, and coming back
// online starts a sync at once.
func (a *Agent) setOnline(on bool, err error) {
	if a.online.Swap(on) == on {
		return
	}
	ev := map[string]any{"online": on}
	if err != nil {
		ev["error"] = err.Error()
	}
	a.log.Info("acquirer", "online", on, "err", err)
	a.events.publish("acquirer", ev)
	if on {
		a.kickSync()
	}
}

func (a *Agent) kickSync() {
	select {
	case a.syncKick <- struct{}{}:
	default:
	}
}

func (a *Agent) pingLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Acquirer.PingInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := a.ping(ctx)
		if ctx.Err() != nil {
			return
		}
		a.setOnline(err == nil, err)
		if err == nil {
			a.authClient.Breaker.Success()
		}
	}
}

// syncLoop drains the journal every sync interval, and at once when the acquirer comes
// back or a sale was stored offline.
func (a *Agent) syncLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Acquirer.SyncInterval.D())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.syncKick:
		}
		if !a.online.Load() {
			continue
		}
		rep, err := a.syncer.Once(ctx)
		if ctx.Err() != nil {
			return
		}
		if rep.Batches > 0 && rep.HighWater > a.highWater.Load() {
			// The acquirer's own mark, from its last answer; kept across restarts.
			a.highWater.Store(rep.HighWater)
			if err := a.journal.SetSyncState(ctx, "high_water", strconv.FormatUint(rep.HighWater, 10)); err != nil {
				a.log.Warn("journal: high-water mark not kept", "err", err)
			}
		}
		a.syncMu.Lock()
		a.lastRep = rep
		if err == nil {
			a.lastSync, a.syncErr = a.now(), ""
		} else {
			a.syncErr = err.Error()
		}
		a.syncMu.Unlock()
		if err != nil && uplink.Temporary(err) {
			a.setOnline(false, err)
		}
		if rep.Sent > 0 || rep.Settled > 0 || err != nil {
			ev := map[string]any{"sent": rep.Sent, "accepted": rep.Accepted, "duplicate": rep.Duplicate, "rejected": len(rep.Rejected),
				"approved": rep.Approved, "declined": len(rep.Declined), "high_water": rep.HighWater, "left": rep.Left}
			if err != nil {
				ev["error"] = err.Error()
			}
			a.events.publish("sync", ev)
			a.log.Info("sync", "sent", rep.Sent, "settled", rep.Settled, "declined", len(rep.Declined), "left", rep.Left, "err", err)
		}
	}
}

// onOutcome handles the outcome of an offline sale after upload: the payment catches up,
// and a decline (money the merchant will not get) is an event and a printed notice.
func (a *Agent) onOutcome(o uplink.Outcome) {
	ctx := context.Background()
	// The journal moved the payment with its record (same transaction); announce it.
	var p *Payment
	if row, err := a.journal.PaymentBySale(ctx, o.Record.ID); err == nil {
		if p, _, err = decodePayment(row); err == nil {
			p.UpdatedAt = a.now().UTC()
			if o.Decision == wire.Declined {
				p.Error = &ErrorInfo{Code: "declined_after_upload", Message: o.Reason}
			}
			a.publishPayment(p)
		} else {
			p = nil
		}
	}
	if o.Record.Kind == posagent.KindRefund {
		pid := ""
		if row, err := a.journal.PaymentBySale(ctx, o.Record.Parent); err == nil {
			pid = row.ID
		}
		rf := refundOf(o.Record, pid, "")
		a.events.publish("refund", rf)
		a.log.Info("forwarded refund "+rf.State, "sequence", rf.Sequence, "amount", rf.Amount, "reason", o.Reason)
		return
	}
	if o.Decision != "declined" {
		return
	}
	r := o.Record
	a.metrics.sale("declined_after_upload", true)
	a.log.Warn("offline sale declined after upload", "sequence", r.Sequence, "amount", r.Amount.String(), "currency", r.Amount.Currency.Code, "reason", o.Reason)
	ev := map[string]any{"event": "declined_after_upload", "sequence": r.Sequence, "sale_id": r.ID, "amount": r.Amount.Minor,
		"currency": r.Amount.Currency.Code, "reference": r.Reference, "reason": o.Reason}
	if p != nil {
		ev["payment_id"] = p.ID
	}
	a.events.publish("sync", ev)
	if a.dev.printer != nil {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			rc := a.declineNotice(r, o.Reason)
			pctx, cancel := context.WithTimeout(a.hardCtx, time.Minute)
			defer cancel()
			if _, err := a.dev.printer.Print(pctx, rc); err != nil {
				a.log.Warn("decline notice not printed", "sequence", r.Sequence, "err", err)
			}
		}()
	}
}

// scanLoop reads the scanner and hands each code to the checkout.
func (a *Agent) scanLoop(ctx context.Context) {
	if a.dev.scanner == nil {
		return
	}
	for {
		sc, err := a.dev.scanner.Next(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			a.log.Warn("scanner", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		a.Scan(sc)
	}
}
