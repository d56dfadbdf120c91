package main

import "testing"

// TestSettled: the demo prints the display once it shows the payment's final screen, not
// the screen of the way there or the previous payment's.
func TestSettled(t *testing.T) {
	approved := &payment{State: "approved", Amount: 1250}
	for _, tc := range []struct {
		screen string
		p      *payment
		want   bool
	}{
		{"[Scan your code / Total CNY 12.50]", approved, false},
		{"[PROCESSING... / TOTAL CNY 12.50]", approved, false},
		{"[APPROVED / Paid CNY 8.80]", approved, false}, // the previous sale's
		{"[APPROVED / Paid CNY 12.50]", approved, true},
		{"[APPROVED / TOTAL CNY 12.50]", approved, false}, // half written
		{"[DECLINED / TOTAL CNY 12.51]", &payment{State: "declined", Amount: 1251}, false},
		{"[APPROVED (OFFLINE) / Total CNY 45.00]", &payment{State: "stored", Amount: 4500}, false},
		{"[APPROVED (OFFLINE) / CNY 12.50]", &payment{State: "stored", Amount: 1250}, true},
		{"[CHECKING PAYMENT / PLEASE WAIT]", &payment{State: "failed", Amount: 1251}, false},
		{"[DECLINED / INSUFFICIENT FUNDS]", &payment{State: "declined", Amount: 1251}, true},
		{"[CANCELED]", &payment{State: "canceled", Amount: 100}, true},
		{"[APPROVED / Paid CNY 1.00]", &payment{State: "canceled", Amount: 100}, false},
	} {
		if got := settled(tc.screen, tc.p); got != tc.want {
			t.Errorf("settled(%q, %s) = %v, want %v", tc.screen, tc.p.State, got, tc.want)
		}
	}
}
