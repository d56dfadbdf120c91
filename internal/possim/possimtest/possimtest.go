// Package possimtest starts simulated devices for tests of the packages that drive them.
package possimtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/posagent/posagent/internal/possim"
)

// Printer serves a simulated printer with the given paper width on a pty for the length of
// the test and returns it with the path a driver opens. The pty's master is non-blocking,
// so unplugging it at cleanup stops the simulator's reader; a simulator that does not stop
// within 10 s fails the test instead of hanging it.
func Printer(tb testing.TB, widthDots int) (*possim.Printer, string) {
	tb.Helper()
	dir := tb.TempDir()
	link, err := possim.NewLink(filepath.Join(dir, "printer"))
	if err != nil {
		tb.Skipf("no pty: %v", err)
	}
	sim := possim.NewPrinter(dir)
	sim.WidthDots = widthDots
	sim.IdleEnd = 150 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	master := link.Master()
	go func() {
		defer close(done)
		sim.Serve(ctx, master) //nolint:errcheck // the test checks what was printed
	}()
	tb.Cleanup(func() {
		cancel()
		link.Unplug()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			tb.Error("the simulated printer did not stop within 10 s of its pty closing")
		}
	})
	return sim, link.Path
}
