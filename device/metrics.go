package device

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// metrics are the agent's counters, written in the Prometheus text format (0.0.4) by
// hand: a dozen series do not need a client library on a terminal.
type metrics struct {
	mu         sync.Mutex
	sales      map[[2]string]int64 // outcome, offline
	receipts   map[bool]int64
	acqSum     time.Duration
	acqCount   int64
	scans      int64
	lastScanAt time.Time
}

func newMetrics() *metrics {
	return &metrics{sales: map[[2]string]int64{}, receipts: map[bool]int64{}}
}

func (m *metrics) sale(outcome string, offline bool) {
	m.mu.Lock()
	m.sales[[2]string{outcome, fmt.Sprint(offline)}]++
	m.mu.Unlock()
}

func (m *metrics) receipt(ok bool) {
	m.mu.Lock()
	m.receipts[ok]++
	m.mu.Unlock()
}

func (m *metrics) observeAcquirer(d time.Duration) {
	m.mu.Lock()
	m.acqSum += d
	m.acqCount++
	m.mu.Unlock()
}

func (m *metrics) scanAt(t time.Time) {
	m.mu.Lock()
	m.scans++
	m.lastScanAt = t
	m.mu.Unlock()
}

// write writes every series; the journal's and the uplink's figures are read now.
func (a *Agent) writeMetrics(ctx context.Context, w io.Writer) {
	m := a.metrics
	m.mu.Lock()
	fmt.Fprintln(w, "# HELP posagent_sales_total Payments that ended, by outcome and whether they were taken offline.")
	fmt.Fprintln(w, "# TYPE posagent_sales_total counter")
	keys := make([][2]string, 0, len(m.sales))
	for k := range m.sales {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
	for _, k := range keys {
		fmt.Fprintf(w, "posagent_sales_total{outcome=%q,offline=%q} %d\n", k[0], k[1], m.sales[k])
	}
	fmt.Fprintln(w, "# HELP posagent_receipts_total Receipts printed or failed.")
	fmt.Fprintln(w, "# TYPE posagent_receipts_total counter")
	fmt.Fprintf(w, "posagent_receipts_total{result=\"printed\"} %d\nposagent_receipts_total{result=\"failed\"} %d\n", m.receipts[true], m.receipts[false])
	fmt.Fprintln(w, "# HELP posagent_scans_total Codes read by the scanner.")
	fmt.Fprintln(w, "# TYPE posagent_scans_total counter")
	fmt.Fprintf(w, "posagent_scans_total %d\n", m.scans)
	fmt.Fprintln(w, "# HELP posagent_acquirer_authorization_seconds Online authorization round trips.")
	fmt.Fprintln(w, "# TYPE posagent_acquirer_authorization_seconds summary")
	fmt.Fprintf(w, "posagent_acquirer_authorization_seconds_sum %g\nposagent_acquirer_authorization_seconds_count %d\n", m.acqSum.Seconds(), m.acqCount)
	m.mu.Unlock()

	online := 0
	if a.online.Load() {
		online = 1
	}
	fmt.Fprintln(w, "# HELP posagent_acquirer_online 1 when the last authenticated ping or call succeeded.")
	fmt.Fprintln(w, "# TYPE posagent_acquirer_online gauge")
	fmt.Fprintf(w, "posagent_acquirer_online %d\n", online)
	if st, err := a.journal.Stats(ctx); err == nil {
		age := 0.0
		if st.Outstanding.Count > 0 {
			age = a.now().Sub(st.Outstanding.Oldest).Seconds()
		}
		fmt.Fprintln(w, "# HELP posagent_queue_depth Journal records the acquirer does not hold yet.")
		fmt.Fprintln(w, "# TYPE posagent_queue_depth gauge")
		fmt.Fprintf(w, "posagent_queue_depth %d\n", st.Unacked)
		fmt.Fprintln(w, "# HELP posagent_queue_outstanding Sales accepted offline and not settled.")
		fmt.Fprintln(w, "# TYPE posagent_queue_outstanding gauge")
		fmt.Fprintf(w, "posagent_queue_outstanding %d\n", st.Outstanding.Count)
		fmt.Fprintln(w, "# HELP posagent_queue_oldest_age_seconds Age of the oldest outstanding offline sale.")
		fmt.Fprintln(w, "# TYPE posagent_queue_oldest_age_seconds gauge")
		fmt.Fprintf(w, "posagent_queue_oldest_age_seconds %g\n", age)
	}
	a.syncMu.Lock()
	last := a.lastSync
	a.syncMu.Unlock()
	lag := -1.0
	if !last.IsZero() {
		lag = a.now().Sub(last).Seconds()
	}
	fmt.Fprintln(w, "# HELP posagent_sync_lag_seconds Time since the last sync round that reached the acquirer (-1: none yet).")
	fmt.Fprintln(w, "# TYPE posagent_sync_lag_seconds gauge")
	fmt.Fprintf(w, "posagent_sync_lag_seconds %g\n", lag)
	fmt.Fprintln(w, "# HELP posagent_device_up 1 when the peripheral is connected (configured ones only).")
	fmt.Fprintln(w, "# TYPE posagent_device_up gauge")
	for _, name := range []string{"scanner", "printer", "display"} {
		if p := a.dev.ports[name]; p != nil {
			up := 0
			if p.Connected() {
				up = 1
			}
			fmt.Fprintf(w, "posagent_device_up{device=%q} %d\n", name, up)
		}
	}
}
