package uplink

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/posagent/posagent/sync/wire"
)

func TestSizer(t *testing.T) {
	s := &Syncer{BatchSize: 400, MaxBatchBytes: 1000, TargetLatency: time.Second}
	z := s.newSizer()
	steps := []struct {
		took time.Duration
		ok   bool
		want int
	}{
		{100 * time.Millisecond, true, 400}, // fast, at the ceiling already
		{2 * time.Second, true, 200},        // slow: halved
		{500 * time.Millisecond, true, 200}, // within the target: kept
		{0, false, 100},                     // failed: halved
		{200 * time.Millisecond, true, 200}, // fast: doubled
		{time.Millisecond, true, 400},       // fast: doubled, up to the ceiling
		{time.Millisecond, true, 400},       // stays there
	}
	for i, st := range steps {
		z.answered(st.took, st.ok)
		if z.limit != st.want {
			t.Fatalf("step %d: limit %d, want %d", i, z.limit, st.want)
		}
	}
	for i := 0; i < 20; i++ {
		z.answered(time.Hour, false)
	}
	if z.limit != 1 {
		t.Errorf("after many failures: limit %d, want 1", z.limit)
	}
	z.limit = 3
	for _, tc := range []struct {
		sizes []int
		want  int
	}{
		{[]int{100, 100, 100, 100}, 3}, // the record limit
		{[]int{600, 300, 200}, 2},      // the byte bound
		{[]int{5000, 10}, 1},           // one record always goes, even above the bound
		{nil, 0},
	} {
		if got := z.cut(tc.sizes); got != tc.want {
			t.Errorf("cut(%v) = %d, want %d", tc.sizes, got, tc.want)
		}
	}
}

// TestWireSize: the estimate is within 10% of the record's JSON (the byte bound is a
// guide for the batch, not a hard limit: the acquirer's is 8 times DefaultBatchBytes).
func TestWireSize(t *testing.T) {
	h := strings.Repeat("ab", 32)
	for _, r := range []wire.Record{
		{ID: "0190f2a0-0000-7000-8000-000000000001", Terminal: "T1", Sequence: 12345, IdempotencyKey: "pos-000001", Reference: "R000001",
			CapturedAt: time.Now().UTC(), Amount: 100025, Currency: "CNY", Method: "wallet-code", Scheme: "wechat-pay", Offline: true,
			State: "uploading", PrevHash: h, Hash: h, MAC: h, CredentialTag: h, Credential: "134567890100000001"},
		{ID: "0190f2a0-0000-7000-8000-000000000002", Terminal: "fleet-abcdef-00001", Sequence: 1, IdempotencyKey: "k", CapturedAt: time.Now().UTC(),
			Amount: 1, Currency: "CNY", Method: "emv-cpm", State: "approved", Hash: h, MAC: h},
	} {
		b, _ := json.Marshal(r)
		got, want := wireSize(r), len(b)
		if got < want*9/10 || got > want*11/10 {
			t.Errorf("wireSize = %d, JSON is %d bytes: %s", got, want, b)
		}
	}
}
