package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/internal/wait"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

// Config is one fleet simulation.
type Config struct {
	Acquirer    string        // the acquirer's base URL, e.g. http://127.0.0.1:8443; several, comma-separated, are nodes the terminals are spread over
	Terminals   int           // N
	Records     int           // M, offline sales per terminal
	Outage      time.Duration // the sales' capture times span this, ending at the reconnect
	Concurrency int           // terminals draining at once (0: all of them)
	DB          string        // the acquirer's store (sqlite:PATH or postgres://…): provisioning and verification
	MasterKey   string        // the store's master key file (SQLite default: PATH.key)
	Dir         string        // where the journals go (a new temporary directory when "")
	Prefix      string        // terminal ids are Prefix-00001…; a fresh random prefix when ""
	Timeout     time.Duration // the whole reconnect (10 min when 0)
	// Progress receives the progress display; TTY draws a bar on it instead of lines.
	Progress io.Writer
	TTY      bool
}

// Result is what a simulation measured and found.
type Result struct {
	Terminals, Records int
	Prefix             string
	Elapsed            time.Duration // from the reconnect until the last terminal drained
	Accepted           int64
	Duplicate          int64
	Rejected           int64
	Batches            int64         // batch requests answered 200
	P50, P99, Max      time.Duration // latency of the batch requests answered 200, as the terminals saw it
	// ServerP50, ServerP99: the same batches' answer time inside acquirerd (its
	// acquirerd_request_duration_seconds histogram, scraped before and after; 0 when the
	// acquirer exports none), so that the terminals' own waiting is told apart.
	ServerP50, ServerP99 time.Duration
	TooMany              int64 // batch (and other) requests answered 429
	Retries              int64 // requests sent again by the clients
	Errors               int64 // drains that ended in an error (tried again while temporary)
	Failed               int   // terminals that never drained
	// Verification, from the acquirer's store.
	Stored     int      // records the acquirer holds for these terminals
	Lost       int      // sequences 1..M missing
	Duplicated int      // entries beyond one per sequence
	Broken     []string // terminals whose chain head is not the journal's
}

// RecordsPerSecond is the accepted records over the reconnect's duration.
func (r Result) RecordsPerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Accepted+r.Duplicate) / r.Elapsed.Seconds()
}

// OK reports whether the acquirer holds exactly N×M records with every chain intact.
func (r Result) OK() bool {
	return r.Failed == 0 && r.Lost == 0 && r.Duplicated == 0 && len(r.Broken) == 0 && r.Stored == r.Terminals*r.Records
}

// terminal is one simulated terminal: its journal and what it drains with.
type terminal struct {
	n       int // its index in the fleet
	id      string
	key     *offline.Key
	journal *offline.Journal
	head    []byte // the journal's last hash
}

// Run provisions cfg.Terminals terminals in the acquirer's store, journals cfg.Records
// offline sales in each one's own journal, reconnects them all at once through the
// uplink's Syncer and Client, and verifies what the acquirer holds.
func Run(ctx context.Context, cfg Config) (Result, error) {
	res := Result{Terminals: cfg.Terminals, Records: cfg.Records}
	if err := cfg.check(); err != nil {
		return res, err
	}
	if cfg.Prefix == "" {
		var b [3]byte
		rand.Read(b[:])
		cfg.Prefix = "fleet-" + hex.EncodeToString(b[:])
	}
	res.Prefix = cfg.Prefix
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "fleetsim-")
		if err != nil {
			return res, fmt.Errorf("journals directory: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return res, fmt.Errorf("journals directory: %w", err)
	}
	store, err := acquirer.Open(ctx, cfg.DB, cfg.MasterKey)
	if err != nil {
		return res, fmt.Errorf("open the acquirer's store: %w", err)
	}
	defer store.Close()
	fmt.Fprintf(cfg.Progress, "provisioning %d terminals (%s-00001…) and journaling %d offline sales each\n", cfg.Terminals, cfg.Prefix, cfg.Records)
	terms, err := provision(ctx, store, cfg)
	defer func() {
		for _, t := range terms {
			if t != nil && t.journal != nil {
				t.journal.Close()
			}
		}
	}()
	if err != nil {
		return res, err
	}
	if err := reconnect(ctx, cfg, terms, &res); err != nil {
		return res, err
	}
	return res, verify(ctx, store, cfg, terms, &res)
}

func (c *Config) check() error {
	switch {
	case c.Acquirer == "":
		return errors.New("--acquirer URL is required, e.g. http://127.0.0.1:8443")
	case c.DB == "":
		return errors.New("--db is required: fleetsim provisions its terminals in the acquirer's store (sqlite:PATH or postgres://…) and verifies them there")
	case c.Terminals <= 0 || c.Records <= 0:
		return errors.New("--terminals and --records must be positive")
	case c.Concurrency < 0:
		return errors.New("--concurrency must be 0 (all at once) or positive")
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	return nil
}

// policy lets a simulated terminal keep all its sales offline.
var policy = offline.Policy{
	Methods:  []posagent.Method{posagent.MethodWalletCode, posagent.MethodEMVCPM},
	Limits:   map[string]offline.Limit{"CNY": {PerTransaction: 1 << 40, Outstanding: 1 << 60}},
	MaxCount: 1 << 30,
}

// wirePolicy is the policy `acquirerd terminals add` registers (its default --offline-max).
var wirePolicy = wire.Policy{MethodsOffline: []string{"emv-cpm", "wallet-code"}, MaxAmount: map[string]int64{"CNY": 50000},
	MaxOutstanding: map[string]int64{"CNY": 20 * 50000}, MaxCount: 200, MaxAgeSeconds: 72 * 3600}

// provision registers each terminal with a fresh secret in the store (AddTerminal, as
// `acquirerd terminals add` does) and fills its journal, a few terminals at a time.
func provision(ctx context.Context, store acquirer.Store, cfg Config) ([]*terminal, error) {
	terms := make([]*terminal, cfg.Terminals)
	cny, _ := posagent.LookupCurrency("CNY")
	reconnectAt := time.Now()
	var next atomic.Int64
	var filled atomic.Int64
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cfg.Terminals || ctx.Err() != nil {
					return
				}
				t, err := newTerminal(ctx, store, cfg, i, reconnectAt, cny)
				terms[i] = t
				if err != nil {
					errs <- err
					return
				}
				if n := filled.Add(1); n%100 == 0 || int(n) == cfg.Terminals {
					fmt.Fprintf(cfg.Progress, "  %d/%d terminals provisioned and filled\n", n, cfg.Terminals)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return terms, <-errs // the first error, if any (the others are alike)
}

func newTerminal(ctx context.Context, store acquirer.Store, cfg Config, i int, reconnectAt time.Time, cny posagent.Currency) (*terminal, error) {
	id := fmt.Sprintf("%s-%05d", cfg.Prefix, i+1)
	secret := make([]byte, offline.KeySize)
	rand.Read(secret)
	defer clear(secret)
	if err := store.AddTerminal(ctx, id, secret, wirePolicy); err != nil {
		return nil, fmt.Errorf("provision terminal %s: %w", id, err)
	}
	key, err := offline.NewKey(secret)
	if err != nil {
		return nil, err
	}
	// The sales happen during the outage: the journal's clock walks through it.
	step := cfg.Outage / time.Duration(cfg.Records)
	clock := reconnectAt.Add(-cfg.Outage)
	j, err := offline.Open(filepath.Join(cfg.Dir, id+".db"), offline.Options{Key: key, Terminal: id, Policy: policy, Readers: 1,
		Now: func() time.Time { return clock }})
	if err != nil {
		return nil, fmt.Errorf("journal of %s: %w", id, err)
	}
	t := &terminal{n: i, id: id, key: key, journal: j}
	for n := range cfg.Records {
		clock = clock.Add(step)
		r, _, err := j.Append(ctx, offline.NewSale{
			IdempotencyKey: saleKey(n), Reference: fmt.Sprintf("R%06d", n),
			Amount: posagent.Amount{Minor: int64(100+n)*100 + 25, Currency: cny},
			Method: posagent.MethodWalletCode, Scheme: posagent.SchemeWeChatPay,
			Credential: fmt.Sprintf("1345678901%08d", n), Offline: true,
		})
		if err != nil {
			return t, fmt.Errorf("journal sale %d of %s: %w", n+1, id, err)
		}
		t.head = r.Hash
	}
	return t, nil
}

func saleKey(n int) string { return fmt.Sprintf("fleet-%06d", n) }

// meter is the HTTP transport of every simulated terminal: it times the batch uploads
// and counts 429 answers.
type meter struct {
	next      http.RoundTripper
	mu        sync.Mutex
	latencies []time.Duration // batch uploads answered 200
	tooMany   atomic.Int64
}

func (m *meter) RoundTrip(req *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := m.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		m.tooMany.Add(1)
	}
	if resp.StatusCode == http.StatusOK && req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, "/batches") {
		d := time.Since(t0)
		m.mu.Lock()
		m.latencies = append(m.latencies, d)
		m.mu.Unlock()
	}
	return resp, err
}

// reconnect drains every terminal's journal at once (at most cfg.Concurrency at a time),
// each through its own uplink.Client and Syncer, as a terminal whose network came back.
func reconnect(ctx context.Context, cfg Config, terms []*terminal, res *Result) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	conc := cfg.Concurrency
	if conc == 0 || conc > len(terms) {
		conc = len(terms)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = conc, conc
	m := &meter{next: tr}
	defer tr.CloseIdleConnections()
	var done, retries, drainErrs, accepted, duplicate, rejected atomic.Int64
	total := int64(len(terms) * cfg.Records)
	stop := make(chan struct{})
	progressDone := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(progressDone)
		draw(cfg, stop, start, total, &done, &m.tooMany)
	}()
	nodes := strings.Split(cfg.Acquirer, ",")
	before, _ := scrapeBatches(ctx, nodes)
	sem := make(chan struct{}, conc)
	var failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				failed.Add(1)
				return
			}
			defer func() { <-sem }()
			c, err := uplink.New(nodes[t.n%len(nodes)], t.id, t.key)
			if err != nil {
				errOnce.Do(func() { firstErr = err })
				failed.Add(1)
				return
			}
			c.HTTP.Transport = m
			prev := 0
			s := &uplink.Syncer{Journal: t.journal, Client: c, Key: t.key, BreakerWait: 30 * time.Second,
				OnProgress: func(p uplink.Progress) { done.Add(int64(p.Done - prev)); prev = p.Done }}
			backoff := uplink.FullJitter(100*time.Millisecond, 5*time.Second)
			for round := 0; ; round++ {
				prev = 0
				rep, err := s.Drain(ctx)
				accepted.Add(int64(rep.Accepted))
				duplicate.Add(int64(rep.Duplicate))
				rejected.Add(int64(len(rep.Rejected)))
				if err == nil && rep.Left == 0 {
					break
				}
				if err == nil {
					err = fmt.Errorf("terminal %s: %d records left after a drain", t.id, rep.Left)
				}
				drainErrs.Add(1)
				if !uplink.Temporary(err) || ctx.Err() != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("terminal %s: %w", t.id, err) })
					failed.Add(1)
					return
				}
				if wait.Sleep(ctx, backoff(round)) != nil {
					failed.Add(1)
					return
				}
			}
			retries.Add(c.Stats().Retries)
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	close(stop)
	<-progressDone
	if after, err := scrapeBatches(ctx, nodes); err == nil && before != nil {
		res.ServerP50, res.ServerP99 = quantile(before, after, 0.50), quantile(before, after, 0.99)
	}
	res.Accepted, res.Duplicate, res.Rejected = accepted.Load(), duplicate.Load(), rejected.Load()
	res.Retries, res.Errors, res.Failed = retries.Load(), drainErrs.Load(), int(failed.Load())
	res.TooMany = m.tooMany.Load()
	lat := m.latencies
	slices.Sort(lat)
	res.Batches = int64(len(lat))
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1]
	}
	if res.Failed > 0 && firstErr != nil {
		fmt.Fprintf(cfg.Progress, "%d terminals did not drain; the first error: %v\n", res.Failed, firstErr)
	}
	return nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// draw shows the progress until stop: a bar on a terminal (progressbar), a line a second
// otherwise.
func draw(cfg Config, stop <-chan struct{}, start time.Time, total int64, done, tooMany *atomic.Int64) {
	tick := time.NewTicker(time.Second)
	var bar *progressbar.ProgressBar
	if cfg.TTY {
		tick.Reset(100 * time.Millisecond)
		bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(cfg.Progress), progressbar.OptionSetDescription("records"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rec"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(cfg.Progress) }))
	}
	defer tick.Stop()
	show := func() {
		d := done.Load()
		if bar != nil {
			bar.Describe(fmt.Sprintf("records (429s %d)", tooMany.Load()))
			bar.Set64(d)
			return
		}
		el := time.Since(start)
		rate := float64(d) / max(el.Seconds(), 1e-3)
		fmt.Fprintf(cfg.Progress, "progress: %d/%d records, %.0f records/s, %d 429s, %s\n", d, total, rate, tooMany.Load(), el.Truncate(time.Millisecond))
	}
	for {
		select {
		case <-stop:
			show()
			return
		case <-tick.C:
			show()
		}
	}
}

// verify counts what the acquirer's store holds for each terminal (its ledger, as
// `acquirerd ledger` reads it): every sequence 1..M exactly once, under the key the
// terminal journaled it with, and the chain's head is the journal's last hash. The store
// checked every link (prev_hash, MAC, credential tag) as it accepted each record, so a
// complete sequence with the journal's head is the journal's chain, intact.
func verify(ctx context.Context, store acquirer.Store, cfg Config, terms []*terminal, res *Result) error {
	for _, t := range terms {
		seen := make([]int, cfg.Records+1)
		err := store.Ledger(ctx, t.id, func(e wire.LedgerEntry) error {
			res.Stored++
			if e.Sequence < 1 || e.Sequence > uint64(cfg.Records) || e.IdempotencyKey != saleKey(int(e.Sequence)-1) {
				res.Duplicated++ // an entry the terminal never journaled
				return nil
			}
			seen[e.Sequence]++
			return nil
		})
		if err != nil {
			return fmt.Errorf("read the ledger of %s: %w", t.id, err)
		}
		for _, n := range seen[1:] {
			switch {
			case n == 0:
				res.Lost++
			case n > 1:
				res.Duplicated += n - 1
			}
		}
		h, err := store.ChainHead(ctx, t.id)
		if err != nil {
			return fmt.Errorf("read the chain head of %s: %w", t.id, err)
		}
		if h.Sequence != uint64(cfg.Records) || h.Hash != hex.EncodeToString(t.head) {
			res.Broken = append(res.Broken, t.id)
		}
	}
	return nil
}

// Print writes the report.
func (r Result) Print(w io.Writer) {
	fmt.Fprintf(w, "terminals %d × records %d (%s-*)\n", r.Terminals, r.Records, r.Prefix)
	fmt.Fprintf(w, "reconnect: %s, %.0f accepted records/s (%d accepted, %d duplicate, %d rejected)\n",
		r.Elapsed.Truncate(time.Millisecond), r.RecordsPerSecond(), r.Accepted, r.Duplicate, r.Rejected)
	fmt.Fprintf(w, "batches: %d, latency p50 %s p99 %s max %s (inside acquirerd: p50 %s p99 %s)\n", r.Batches, ms(r.P50), ms(r.P99), ms(r.Max),
		ms(r.ServerP50), ms(r.ServerP99))
	fmt.Fprintf(w, "429s: %d, retries: %d, drain errors: %d, terminals not drained: %d\n", r.TooMany, r.Retries, r.Errors, r.Failed)
	fmt.Fprintf(w, "acquirer holds %d of %d records: %d lost, %d duplicated, %d broken chains\n",
		r.Stored, r.Terminals*r.Records, r.Lost, r.Duplicated, len(r.Broken))
	if len(r.Broken) > 0 {
		fmt.Fprintf(w, "broken chains: %s\n", strings.Join(r.Broken[:min(len(r.Broken), 10)], ", "))
	}
	if r.OK() {
		fmt.Fprintln(w, "OK: every record stored exactly once, every chain intact")
	} else {
		fmt.Fprintln(w, "FAIL: the acquirer does not hold exactly N×M records with every chain intact")
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
