// Command posagent is the agent on an ARM POS terminal: it drives the scanner, printer and
// customer display, reads and shows payment QR codes, journals sales offline and syncs them
// to the acquirer. Run `posagent help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := NewMain(os.Stdin, os.Stdout, os.Stderr).Run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
