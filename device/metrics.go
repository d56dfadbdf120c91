package device

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the agent's Prometheus series, in a private registry (no Go runtime or
// process collectors: the series are the agent's, and nothing registers behind its back).
// Counters and the authorization summary are updated as things happen; the acquirer,
// queue, sync and device gauges are read at each scrape (see scrapeCollector).
type metrics struct {
	registry *prometheus.Registry
	sales    *prometheus.CounterVec // outcome, offline
	receipts *prometheus.CounterVec // result
	scans    prometheus.Counter
	auth     prometheus.Summary
	journal  prometheus.Counter
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		sales: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posagent_sales_total",
			Help: "Payments that ended, by outcome and whether they were taken offline."}, []string{"outcome", "offline"}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "posagent_receipts_total",
			Help: "Receipts printed or failed."}, []string{"result"}),
		scans: prometheus.NewCounter(prometheus.CounterOpts{Name: "posagent_scans_total", Help: "Codes read by the scanner."}),
		auth: prometheus.NewSummary(prometheus.SummaryOpts{Name: "posagent_acquirer_authorization_seconds",
			Help: "Online authorization round trips."}),
		journal: prometheus.NewCounter(prometheus.CounterOpts{Name: "posagent_journal_errors_total",
			Help: "Journal writes that failed (the reconciler resolves the sale at the next start)."}),
	}
	m.receipts.WithLabelValues("printed")
	m.receipts.WithLabelValues("failed")
	m.registry.MustRegister(m.sales, m.receipts, m.scans, m.auth, m.journal, &scrapeCollector{a: a})
	return m
}

func (m *metrics) sale(outcome string, offline bool) {
	off := "false"
	if offline {
		off = "true"
	}
	m.sales.WithLabelValues(outcome, off).Inc()
}

func (m *metrics) receipt(ok bool) {
	r := "failed"
	if ok {
		r = "printed"
	}
	m.receipts.WithLabelValues(r).Inc()
}

func (m *metrics) observeAcquirer(d time.Duration) { m.auth.Observe(d.Seconds()) }

func (m *metrics) scanned() { m.scans.Inc() }

func (m *metrics) journalError() { m.journal.Inc() }

// handler serves the registry in the Prometheus text format; the API's auth is in front.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

var (
	descOnline = prometheus.NewDesc("posagent_acquirer_online",
		"1 when the last authenticated ping or call succeeded.", nil, nil)
	descQueueDepth = prometheus.NewDesc("posagent_queue_depth",
		"Journal records the acquirer does not hold yet.", nil, nil)
	descOutstanding = prometheus.NewDesc("posagent_queue_outstanding",
		"Sales accepted offline and not settled.", nil, nil)
	descOldest = prometheus.NewDesc("posagent_queue_oldest_age_seconds",
		"Age of the oldest outstanding offline sale.", nil, nil)
	descSyncLag = prometheus.NewDesc("posagent_sync_lag_seconds",
		"Time since the last sync round that reached the acquirer (-1: none yet).", nil, nil)
	descSkew = prometheus.NewDesc("posagent_clock_skew_seconds",
		"The acquirer's clock minus the terminal's, from the last ping (requests are signed with the corrected time).", nil, nil)
	descReversals = prometheus.NewDesc("posagent_reversals_pending",
		"Reversals journaled and not yet acknowledged by the acquirer.", nil, nil)
	descDeviceUp = prometheus.NewDesc("posagent_device_up",
		"1 when the peripheral is connected (configured ones only).", []string{"device"}, nil)
)

// scrapeCollector reads the figures that are state, not events, at scrape time: the
// journal's (one query), the uplink's and the ports'. The queue series are left out of a
// scrape in which the journal cannot be read.
type scrapeCollector struct{ a *Agent }

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOnline, descQueueDepth, descOutstanding, descOldest, descSyncLag, descDeviceUp, descSkew, descReversals} {
		ch <- d
	}
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descOnline, b2f(a.online.Load()))
	gauge(descSkew, a.Skew().Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if revs, err := a.journal.PendingReversals(ctx); err == nil {
		gauge(descReversals, float64(len(revs)))
	}
	st, err := a.journal.Stats(ctx)
	cancel()
	if err == nil {
		age := 0.0
		if st.Outstanding.Count > 0 {
			age = a.now().Sub(st.Outstanding.Oldest).Seconds()
		}
		gauge(descQueueDepth, float64(st.Unacked))
		gauge(descOutstanding, float64(st.Outstanding.Count))
		gauge(descOldest, age)
	} else {
		a.log.Warn("metrics: journal stats", "err", err)
	}
	a.syncMu.Lock()
	last := a.lastSync
	a.syncMu.Unlock()
	lag := -1.0
	if !last.IsZero() {
		lag = a.now().Sub(last).Seconds()
	}
	gauge(descSyncLag, lag)
	for _, name := range []string{"scanner", "printer", "display"} {
		if p := a.dev.ports[name]; p != nil {
			gauge(descDeviceUp, b2f(p.Connected()), name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
