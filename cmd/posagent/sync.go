package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/posagent/posagent/internal/flock"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
)

func init() { commands = append(commands, (*Main).syncCommand) }

func (m *Main) syncCommand() *cobra.Command {
	var journal, keyFile, acquirerURL, terminal, configPath string
	var tlsOpts uplink.TLSOptions
	var once bool
	var batch int
	var timeout, interval time.Duration
	journal = os.Getenv("POSAGENT_JOURNAL")
	if journal == "" {
		journal = defaultJournal
	}
	cmd := &cobra.Command{
		Use:   "sync [--once]",
		Short: "Push what the journal holds to the acquirer now, and bring back its decisions",
		Long: `sync uploads the journal's unsent records to the acquirer in batches, in sequence order,
marking each only on the acquirer's answer (accepted, or duplicate when an earlier answer
was lost), then reads the acquirer's results feed and settles offline sales as approved
or declined. Declined sales are listed: that money was not collected. Retries use
full-jitter exponential backoff, honour 429 Retry-After, and stop while the acquirer keeps
failing (circuit breaker).

With --once it does this once and prints a summary; without, it goes on every --interval
until interrupted. A progress bar shows on a terminal.

--acquirer defaults to $POSAGENT_ACQUIRER, --terminal to $POSAGENT_TERMINAL (else the id
the journal was created for), --key-file to $POSAGENT_KEY_FILE; the key file is the
terminal's provisioned secret ('acquirerd terminals add' printed it). What none of these
give comes from the agent's config (--config, $POSAGENT_CONFIG, or
/etc/posagent/posagent.yaml when it exists, with the env file beside it), so on a
provisioned terminal 'posagent sync --once' needs no flags.

TLS: an https:// acquirer is checked against the system's CAs, or against --ca-file
(a private PKI). For an acquirer that requires mutual TLS, --client-cert and --client-key
are this device's certificate and key (its CommonName is the terminal's id).

Exit status: 0 everything was sent and acknowledged, 1 something failed or was rejected.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// What the command line and the environment leave out comes from the agent's
			// config (and the env file beside it), as on a provisioned terminal.
			if acquirerURL == "" || keyFile == "" || (!cmd.Flags().Changed("journal") && os.Getenv("POSAGENT_JOURNAL") == "") {
				cfg, found, err := agentConfig(configPath)
				if err != nil {
					return withHint(err, "fix the config, or give --acquirer, --key-file and --journal")
				}
				if found {
					if acquirerURL == "" {
						acquirerURL = cfg.Acquirer.URL
					}
					if keyFile == "" {
						keyFile = cfg.KeyFile
					}
					if !cmd.Flags().Changed("journal") && os.Getenv("POSAGENT_JOURNAL") == "" && cfg.Journal != "" {
						journal = cfg.Journal
					}
					if terminal == "" {
						terminal = cfg.Terminal
					}
				}
			}
			if acquirerURL == "" {
				return withHint(usageError{errors.New("sync needs --acquirer URL (or POSAGENT_ACQUIRER)")},
					"the acquirer's URL is acquirer.url in the agent's config, e.g. --acquirer https://acq.example:8443")
			}
			if keyFile == "" {
				return withHint(usageError{errors.New("sync needs --key-file (or POSAGENT_KEY_FILE): requests and records are signed with the terminal's secret")},
					"on a terminal it is /etc/posagent/key; 'acquirerd terminals add ID' prints a new terminal's secret")
			}
			if batch < 1 || batch > 500 {
				return usageError{fmt.Errorf("--batch %d must be between 1 and 500", batch)}
			}
			key, err := offline.LoadKey(keyFile, false)
			if err != nil {
				return withHint(err, "pass the terminal's provisioned key file with --key-file")
			}
			if _, err := os.Stat(journal); err != nil {
				return withHint(fmt.Errorf("open journal: %w", err), "give the journal's path with --journal or POSAGENT_JOURNAL")
			}
			lock, err := flock.Acquire(journal + ".lock")
			if errors.Is(err, flock.ErrLocked) {
				return withHint(fmt.Errorf("journal %s: %w", journal, err), "a running agent holds the journal and syncs it itself: stop it first, or look at its status page")
			} else if err != nil {
				return err
			}
			defer lock.Release()
			j, err := offline.Open(journal, offline.Options{Key: key, Terminal: terminal})
			if err != nil {
				return err
			}
			defer j.Close()
			client, err := uplink.New(acquirerURL, j.Terminal(), key)
			if err != nil {
				return usageError{err}
			}
			client.HTTP.Timeout = timeout
			if tlsOpts != (uplink.TLSOptions{}) {
				if err := client.SetTLS(tlsOpts); err != nil {
					return withHint(err, "--ca-file, --client-cert and --client-key need an https:// --acquirer and readable PEM files")
				}
			}
			s := &uplink.Syncer{Journal: j, Client: client, Key: key, BatchSize: batch}
			ctx := cmd.Context()
			if once {
				return m.syncOnce(ctx, s)
			}
			fmt.Fprintf(m.Stdout, "syncing terminal %s with %s every %s (interrupt to stop)\n", j.Terminal(), acquirerURL, interval)
			err = s.Run(ctx, interval, func(rep uplink.Report, err error) {
				if rep.Sent > 0 || rep.Settled > 0 || err != nil {
					m.printSync(rep, err)
				}
			})
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&journal, "journal", journal, "the journal database file")
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config: --acquirer, --key-file and --journal default to its values")
	cmd.Flags().StringVar(&keyFile, "key-file", os.Getenv("POSAGENT_KEY_FILE"), "the terminal's provisioned key file")
	cmd.Flags().StringVar(&acquirerURL, "acquirer", os.Getenv("POSAGENT_ACQUIRER"), "the acquirer's base URL, e.g. https://acquirer.example")
	cmd.Flags().StringVar(&terminal, "terminal", os.Getenv("POSAGENT_TERMINAL"), "this terminal's id (default: the journal's)")
	cmd.Flags().StringVar(&tlsOpts.CAFile, "ca-file", os.Getenv("POSAGENT_CA_FILE"), "PEM CA certificates to trust for the acquirer instead of the system's")
	cmd.Flags().StringVar(&tlsOpts.CertFile, "client-cert", os.Getenv("POSAGENT_CLIENT_CERT"), "this device's certificate (PEM) for mutual TLS")
	cmd.Flags().StringVar(&tlsOpts.KeyFile, "client-key", os.Getenv("POSAGENT_CLIENT_KEY"), "the private key (PEM) of --client-cert")
	cmd.Flags().BoolVar(&once, "once", false, "sync once and exit")
	cmd.Flags().IntVar(&batch, "batch", uplink.DefaultBatch, "records per upload (1-500)")
	cmd.Flags().DurationVar(&timeout, "timeout", uplink.DefaultTimeout, "timeout of each request to the acquirer")
	cmd.Flags().DurationVar(&interval, "interval", 30*time.Second, "time between syncs without --once")
	return cmd
}

func (m *Main) syncOnce(ctx context.Context, s *uplink.Syncer) error {
	if isTerminal(m.Stderr) {
		var bar *progressbar.ProgressBar
		s.OnProgress = func(p uplink.Progress) {
			if bar == nil {
				bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(m.Stderr), progressbar.OptionSetDescription("upload"),
					progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
			}
			bar.ChangeMax(p.Total)
			bar.Set(p.Done)
		}
		defer func() {
			if bar != nil {
				bar.Finish()
			}
		}()
	}
	rep, err := s.Once(ctx)
	m.printSync(rep, err)
	if err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if len(rep.Rejected) > 0 {
		return withHint(fmt.Errorf("sync: the acquirer rejected %d record(s)", len(rep.Rejected)), "see 'posagent queue ls --state failed' and call support")
	}
	return nil
}

// printSync prints the declines, the rejections and a summary line.
func (m *Main) printSync(rep uplink.Report, err error) {
	w := m.Stdout
	for _, d := range rep.Declined {
		a := d.Record.Amount
		fmt.Fprintf(w, "DECLINED  sequence %d  %s %s  %s: %s\n", d.Record.Sequence, offline.FormatAmount(a.Minor, a.Currency), a.Currency.Code,
			queueDash(d.Record.Reference), d.Reason)
	}
	for _, r := range rep.Rejected {
		fmt.Fprintf(w, "REJECTED  sequence %d  %s: %s\n", r.Sequence, r.ID, r.Reason)
	}
	summary(w, rep, err)
}

func summary(w io.Writer, rep uplink.Report, err error) {
	var b strings.Builder
	fmt.Fprintf(&b, "sent %d record(s): %d accepted, %d duplicate, %d rejected; settled %d: %d approved, %d declined; acquirer holds up to sequence %d",
		rep.Sent, rep.Accepted, rep.Duplicate, len(rep.Rejected), rep.Settled, rep.Approved, len(rep.Declined), rep.HighWater)
	if len(rep.Gaps) > 0 {
		fmt.Fprintf(&b, " (missing %d run(s), first %d-%d)", len(rep.Gaps), rep.Gaps[0].From, rep.Gaps[0].To)
	}
	fmt.Fprintf(&b, "; %d left", rep.Left)
	if err != nil {
		b.WriteString("; stopped by an error")
	}
	fmt.Fprintln(w, b.String())
}
