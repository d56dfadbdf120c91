package acquirer

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/posagent/posagent/sync/wire"
)

// TestDashboard loads the Grafana dashboard in configs/ and checks it against the metrics
// the endpoint exports: every acquirerd_ series a panel queries exists on /metrics (after
// requests that produce each of them), and every acquirerd_ metric exported is charted.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../../configs/grafana-acquirerd.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("dashboard has no title or no panels")
	}

	h := newHeldEnv(t, Limits{PerTerminal: 1})
	var resp wire.BatchResponse
	if code, _ := h.do("T1", "POST", "/v1/terminals/T1/batches", wire.Batch{Records: chain(3, func(int) int64 { return 1225 })}, &resp); code != 200 {
		t.Fatalf("batch: %d", code)
	}
	first := h.hold("T1", "held-1")
	if code, _, _ := h.rawError("T1", "GET", "/v1/ping", nil); code != http.StatusTooManyRequests {
		t.Fatalf("second request of T1: %d, want 429", code)
	}
	close(h.release)
	<-first
	exported := exportedSeries(t, h.env)

	name := regexp.MustCompile(`\bacquirerd_[a-z_]+`)
	charted := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := name.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no acquirerd metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("panel %q queries %s, which acquirerd does not export", p.Title, n)
				}
				charted[metricFamily(n)] = true
			}
		}
	}
	for _, m := range []string{MetricRequests, MetricDuration, MetricBatchRecords, MetricThrottled, MetricInFlight, MetricRecords, MetricDecisions} {
		if !charted[m] {
			t.Errorf("metric %s is exported but on no panel", m)
		}
	}
}

// exportedSeries scrapes /metrics: the names of the series it holds (histograms' _bucket,
// _sum and _count included).
func exportedSeries(t *testing.T, e *env) map[string]bool {
	t.Helper()
	r, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	data, _ := io.ReadAll(r.Body)
	out := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		n, _, _ := strings.Cut(line, "{")
		n, _, _ = strings.Cut(n, " ")
		out[n] = true
	}
	return out
}

// metricFamily is the metric a series name belongs to (a histogram's name without its
// _bucket, _sum or _count).
func metricFamily(series string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(series, suf); ok && slices.Contains([]string{MetricDuration, MetricBatchRecords}, f) {
			return f
		}
	}
	return series
}
