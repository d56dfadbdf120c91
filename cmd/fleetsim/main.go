// Command fleetsim puts a fleet's reconnection on an acquirer: N terminals, each with its
// own secret, journal, hash chain and sequence, store M sales offline during an outage,
// then reconnect at once and drain through the terminal's own uplink (sync/uplink's
// Syncer and Client: the same signing, batching and Retry-After handling).
//
//	fleetsim --acquirer http://127.0.0.1:8443 --db sqlite:acquirer.db --terminals 1000 --records 100
//
// It provisions the terminals in the acquirer's store (--db, as `acquirerd terminals add`
// does: a fresh secret each, sealed under the store's master key) and verifies there, at
// the end, that the acquirer holds exactly N×M records with every chain intact; exit 1
// otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg Config
	failed := false
	root := &cobra.Command{
		Use:   "fleetsim --acquirer URL --db DSN --terminals N --records M [--outage D] [--concurrency C]",
		Short: "simulate a fleet of terminals reconnecting to an acquirer after an outage",
		Long: `fleetsim provisions N terminals in the acquirer's store (--db: the same store
acquirerd serves, sqlite:PATH or postgres://…, with its --master-key-file; each terminal gets
a fresh secret, as 'acquirerd terminals add' gives it), journals M offline sales in each
terminal's own journal (SQLite files in a temporary directory, or --dir), their capture
times spread over --outage, then reconnects them all at once (at most --concurrency
draining together) through posagent's own uplink: signed requests, batches, Retry-After.

It reports the accepted records per second, the batch latency (p50, p99, max), the 429s,
retries and errors, then reads the acquirer's store as 'acquirerd ledger' does and checks
that it holds exactly N×M records for these terminals, every sequence once, every chain
ending at its journal's head. Exit status 0 when it does, 1 otherwise, 2 for usage errors.

Terminal ids are PREFIX-00001… (--prefix; a fresh random one by default, so runs against
the same acquirer do not collide).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Acquirer == "" || cfg.DB == "" {
				return usageError{errors.New("fleetsim needs --acquirer URL and --db sqlite:PATH or postgres://… (the acquirer's store, to provision and verify)")}
			}
			if cfg.Terminals <= 0 || cfg.Records <= 0 || cfg.Concurrency < 0 || cfg.Outage < 0 {
				return usageError{errors.New("--terminals and --records must be positive, --concurrency and --outage not negative")}
			}
			cfg.Progress = stderr
			if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				cfg.TTY = true
			}
			res, err := Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			res.Print(stdout)
			failed = !res.OK()
			return nil
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.Acquirer, "acquirer", "", "the acquirer's URL, e.g. http://127.0.0.1:8443; several acquirerd nodes on one store: URL,URL,… (terminals spread over them)")
	f.StringVar(&cfg.DB, "db", os.Getenv("ACQUIRERD_DB"), "the acquirer's store, to provision the terminals and verify: sqlite:PATH or postgres://… (env ACQUIRERD_DB)")
	f.StringVar(&cfg.MasterKey, "master-key-file", os.Getenv("ACQUIRERD_MASTER_KEY_FILE"), "the store's master key (SQLite default: DB path + .key; required with PostgreSQL)")
	f.IntVar(&cfg.Terminals, "terminals", 10, "terminals in the fleet (N)")
	f.IntVar(&cfg.Records, "records", 100, "offline sales each terminal stores during the outage (M)")
	f.DurationVar(&cfg.Outage, "outage", time.Hour, "how long the outage lasted: the sales' capture times span it")
	f.IntVar(&cfg.Concurrency, "concurrency", 0, "terminals draining at once (0: all of them)")
	f.StringVar(&cfg.Dir, "dir", "", "directory for the terminals' journals (default: a temporary one, removed at the end)")
	f.StringVar(&cfg.Prefix, "prefix", "", "terminal id prefix (default: fleet-RANDOM)")
	f.DurationVar(&cfg.Timeout, "timeout", 10*time.Minute, "give up the reconnect after this long")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "fleetsim: %v\n  see fleetsim --help\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "fleetsim: %v\n", err)
		return 1
	}
	if failed {
		return 1
	}
	return 0
}
