package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/internal/sdnotify"
)

func init() { commands = append(commands, (*Main).runCommand) }

func (m *Main) runCommand() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the agent: checkout flow, peripherals, local API for the POS app, uplink",
		Long: `run is the agent: it serves the local API for the POS app (HTTP + JSON and an event
stream on 127.0.0.1, bearer token), drives the scanner, receipt printer and customer
display, journals every sale, authorizes online or stores sales offline under the risk
policy, and syncs the journal to the acquirer in the background.

The config is YAML (configs/demo.yaml is an annotated example); secrets and paths can come
from the environment: POSAGENT_API_TOKEN, POSAGENT_KEY_FILE, POSAGENT_ACQUIRER,
POSAGENT_TERMINAL, POSAGENT_STATE_DIR, POSAGENT_JOURNAL, POSAGENT_LISTEN.

It prints "posagent ready on URL" on standard output once it serves, logs on standard
error (JSON, or text on a terminal), and stops gracefully on SIGTERM or SIGINT: a sale in
flight gets its outcome, and anything still open is resumed at the next start.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usageError{errors.New("run needs --config FILE")}
			}
			cfg, err := device.LoadConfig(configPath, os.Getenv)
			if err != nil {
				return withHint(invalid(err), "see configs/demo.yaml for every field")
			}
			log := newLogger(m.Stderr, cfg.Log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			var a *device.Agent
			a, err = device.New(ctx, cfg, device.Options{Log: log, Version: Version(), Ready: func(addr string) {
				scheme := "http"
				if cfg.API.TLSCert != "" {
					scheme = "https"
				}
				fmt.Fprintf(m.Stdout, "posagent ready on %s://%s\n", scheme, addr)
				// systemd (Type=notify): ready once the API serves, then alive while healthy.
				if err := sdnotify.Notify("READY=1\nSTATUS=serving on " + addr); err != nil {
					log.Warn("sd_notify", "err", err)
				}
				go watchdog(ctx, a, log)
			}})
			if err != nil {
				return withHint(err, "check the config and 'posagent doctor'")
			}
			defer sdnotify.Notify("STOPPING=1")
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config (env POSAGENT_CONFIG)")
	return cmd
}

// watchdog pings systemd's watchdog (WatchdogSec=) while the agent is healthy, so a hung
// agent is restarted; without a watchdog it returns at once.
func watchdog(ctx context.Context, a *device.Agent, log *slog.Logger) {
	every, err := sdnotify.WatchdogInterval()
	if err != nil {
		log.Warn("systemd watchdog", "err", err)
	}
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, every)
		err := a.Healthy(hctx)
		cancel()
		if err != nil {
			log.Error("not healthy: the systemd watchdog is not pinged", "err", err)
			continue
		}
		sdnotify.Notify("WATCHDOG=1")
	}
}

// secretKeys are log attributes whose values never reach a log.
var secretKeys = []string{"token", "authorization", "credential", "secret", "password"}

// newLogger logs JSON for machines and text on a terminal, with secrets masked.
func newLogger(w io.Writer, c device.LogConfig) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		k := strings.ToLower(a.Key)
		for _, s := range secretKeys {
			if k == s || strings.HasSuffix(k, "_"+s) {
				return slog.String(a.Key, "[masked]")
			}
		}
		return a
	}}
	if c.Format == "text" || (c.Format == "auto" && isTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
