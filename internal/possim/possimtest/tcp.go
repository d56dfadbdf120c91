package possimtest

import (
	"context"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim"
)

// TCPPrinter serves a simulated network printer with the given paper width on a free
// loopback port for the length of the test; its address is t.Addr(). A simulator that does
// not stop within 10 s of the test's end fails the test instead of hanging it.
func TCPPrinter(tb testing.TB, widthDots int) *possim.TCPPrinter {
	tb.Helper()
	sim := possim.NewPrinter(tb.TempDir())
	sim.WidthDots = widthDots
	sim.IdleEnd = 150 * time.Millisecond
	t, err := possim.NewTCPPrinter(sim, "127.0.0.1:0")
	if err != nil {
		tb.Skipf("no loopback TCP: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.Serve(ctx) //nolint:errcheck // the test checks what was printed
	}()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tb.Error("the simulated network printer did not stop within 10 s")
		}
	})
	return t
}
