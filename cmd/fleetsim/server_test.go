package main

import (
	"io"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := buckets{0.1: 10, 0.5: 10, 1: 10, inf: 10}
	after := buckets{0.1: 60, 0.5: 100, 1: 110, inf: 110} // 50 ≤ 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1]
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 100 * time.Millisecond},  // the 50th of 100: the top of the first bucket
		{0.7, 300 * time.Millisecond},  // 20 of the 40 in (0.1, 0.5]
		{0.99, 950 * time.Millisecond}, // 9 of the 10 in (0.5, 1]
	} {
		if got := quantile(before, after, tc.q); (got - tc.want).Abs() > time.Millisecond {
			t.Errorf("quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := quantile(after, after, 0.5); got != 0 {
		t.Errorf("no observations: %v, want 0", got)
	}
	if got := quantile(buckets{}, buckets{0.1: 0, inf: 5}, 0.5); got != 100*time.Millisecond {
		t.Errorf("all above the last bound: %v, want the last bound", got)
	}
}

// TestScrapeBatches reads the histogram from a real acquirer's /metrics text: the +Inf
// bucket once, so that the quantiles come out within the finite buckets.
func TestScrapeBatches(t *testing.T) {
	text := `# HELP acquirerd_request_duration_seconds x
# TYPE acquirerd_request_duration_seconds histogram
acquirerd_request_duration_seconds_bucket{result="ok",route="POST /v1/terminals/{terminal}/batches",le="0.1"} 6
acquirerd_request_duration_seconds_bucket{result="ok",route="POST /v1/terminals/{terminal}/batches",le="1"} 10
acquirerd_request_duration_seconds_bucket{result="ok",route="POST /v1/terminals/{terminal}/batches",le="+Inf"} 10
acquirerd_request_duration_seconds_sum{result="ok",route="POST /v1/terminals/{terminal}/batches"} 2
acquirerd_request_duration_seconds_count{result="ok",route="POST /v1/terminals/{terminal}/batches"} 10
acquirerd_request_duration_seconds_bucket{result="ok",route="GET /v1/ping",le="0.1"} 99
acquirerd_request_duration_seconds_bucket{result="ok",route="GET /v1/ping",le="1"} 99
acquirerd_request_duration_seconds_bucket{result="ok",route="GET /v1/ping",le="+Inf"} 99
acquirerd_request_duration_seconds_sum{result="ok",route="GET /v1/ping"} 1
acquirerd_request_duration_seconds_count{result="ok",route="GET /v1/ping"} 99
`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, text) }))
	defer srv.Close()
	got, err := scrapeBatches(t.Context(), []string{srv.URL, srv.URL}) // two nodes: summed
	if err != nil {
		t.Fatal(err)
	}
	if want := (buckets{0.1: 12, 1: 20, math.Inf(1): 20}); !maps.Equal(got, want) {
		t.Errorf("scraped %v, want %v", got, want)
	}
	// The 10th of 20 observations, 12 of them at most 0.1 s: 10/12 of the way into (0, 0.1].
	if q, want := quantile(buckets{}, got, 0.5), 100*time.Millisecond*10/12; (q - want).Abs() > time.Microsecond {
		t.Errorf("p50 %v, want %v", q, want)
	}
}
