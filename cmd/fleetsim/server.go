package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/posagent/posagent/sync/acquirer"
)

// batchRoute is the batch upload's route label in acquirerd's metrics.
const batchRoute = "POST /v1/terminals/{terminal}/batches"

// buckets is a cumulative histogram: upper bound → count.
type buckets map[float64]float64

// scrapeBatches reads the acquirer's histogram of batch answers that went well
// (acquirer.MetricDuration, route batchRoute, result ok) from its /metrics, summed over the
// nodes. A node without /metrics gives nothing, and so no server-side figure.
func scrapeBatches(ctx context.Context, nodes []string) (buckets, error) {
	sum := buckets{}
	for _, n := range nodes {
		req, err := http.NewRequestWithContext(ctx, "GET", n+"/metrics", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("scrape %s/metrics: %w", n, err)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("scrape %s/metrics: %w", n, err)
		}
		f := fams[acquirer.MetricDuration]
		if f == nil {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["route"] != batchRoute || labels["result"] != "ok" || m.GetHistogram() == nil {
				continue
			}
			hasInf := false
			for _, b := range m.GetHistogram().GetBucket() {
				sum[b.GetUpperBound()] += float64(b.GetCumulativeCount())
				hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !hasInf { // the text format lists +Inf; the count is its bucket otherwise
				sum[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum, nil
}

// quantile is the q-quantile of the observations between two scrapes (after less
// before), interpolated linearly within its bucket as Prometheus' histogram_quantile
// does; 0 when there are none.
func quantile(before, after buckets, q float64) time.Duration {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0
	}
	total := after[bounds[len(bounds)-1]] - before[bounds[len(bounds)-1]]
	if total <= 0 {
		return 0
	}
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range bounds {
		n := after[b] - before[b]
		if n >= rank {
			if math.IsInf(b, 1) {
				return time.Duration(lower * float64(time.Second)) // beyond the last bound: its bound
			}
			frac := 0.0
			if n > below {
				frac = (rank - below) / (n - below)
			}
			return time.Duration((lower + (b-lower)*frac) * float64(time.Second))
		}
		lower, below = b, n
	}
	return time.Duration(lower * float64(time.Second))
}
