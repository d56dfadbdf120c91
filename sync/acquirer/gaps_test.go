package acquirer

import (
	"fmt"
	"testing"

	"github.com/posagent/posagent/sync/wire"
)

func TestGapsFrom(t *testing.T) {
	for _, tc := range []struct {
		base uint64
		seqs []uint64
		hw   uint64
		gaps []wire.Gap
	}{
		{0, nil, 0, nil},
		{0, []uint64{1, 2, 3}, 3, nil},
		{0, []uint64{2, 3}, 0, []wire.Gap{{From: 1, To: 1}}},
		{0, []uint64{1, 2, 4, 7}, 2, []wire.Gap{{From: 3, To: 3}, {From: 5, To: 6}}},
		{5, nil, 5, nil},
		{5, []uint64{7, 6}, 7, nil}, // unsorted input
		{5, []uint64{8}, 5, []wire.Gap{{From: 6, To: 7}}},
		{100, []uint64{101, 103}, 101, []wire.Gap{{From: 102, To: 102}}},
	} {
		hw, gaps, err := gapsFrom(tc.base, tc.seqs)
		if got, want := fmt.Sprint(hw, gaps, err), fmt.Sprint(tc.hw, tc.gaps, nil); got != want {
			t.Errorf("gapsFrom(%d, %v) = %s, want %s", tc.base, tc.seqs, got, want)
		}
	}
}
