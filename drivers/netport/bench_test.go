package netport_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posagent/posagent/drivers/connport"
	"github.com/posagent/posagent/drivers/netport"
	"github.com/posagent/posagent/drivers/serial"
	"github.com/posagent/posagent/internal/possim/possimtest"
)

// BenchmarkReconnect measures the time from a network printer coming back to the port
// being connected again, with the default backoff (25 ms doubling to 2 s, with jitter),
// after the printer refused retries attempts while it was away: the longer it was away,
// the longer the wait before the next attempt.
func BenchmarkReconnect(b *testing.B) {
	for _, retries := range []int{1, 4, 8} {
		b.Run(fmt.Sprintf("after-%d-refused", retries), func(b *testing.B) {
			sim := possimtest.TCPPrinter(b, 576)
			evs := make(chan serial.Event, 256)
			port, err := netport.Open(context.Background(), sim.Addr(), connport.Options{OnEvent: func(ev serial.Event) { evs <- ev }})
			if err != nil {
				b.Fatal(err)
			}
			defer port.Close()
			var total time.Duration
			for b.Loop() {
				sim.GoAway()
				// The port notices on its next use: ask for the status until it has.
				port.SetReadTimeout(10 * time.Millisecond)
				for down := false; !down; {
					port.Write([]byte{0x10, 0x04, 0x01})
					var buf [8]byte
					port.Read(buf[:])
					for len(evs) > 0 && !down {
						down = (<-evs).Kind == serial.Disconnected
					}
				}
				for refused := 0; refused < retries; {
					if ev := <-evs; ev.Kind == serial.RetryFailed {
						refused++
					}
				}
				start := time.Now()
				if err := sim.ComeBack(); err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := port.WaitConnected(ctx)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
				for len(evs) > 0 {
					<-evs
				}
			}
			b.ReportMetric(total.Seconds()*1000/float64(b.N), "reconnect-ms")
		})
	}
}
