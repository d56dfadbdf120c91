// Command acquirerd is posagent's reference acquirer endpoint: the sync protocol of
// sync/openapi.yaml over HTTP, on an embedded SQLite store.
//
//	acquirerd --listen 127.0.0.1:8443 --db sqlite:acquirer.db
//	acquirerd terminals add T1 --db sqlite:acquirer.db     prints T1's secret, once
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var listen, dsn, keyFile string
	root := &cobra.Command{
		Use:   "acquirerd --listen ADDR --db sqlite:PATH",
		Short: "posagent's reference acquirer endpoint",
		Long: `acquirerd serves the acquirer side of posagent's sync protocol: authenticated ping,
online authorization, store-and-forward batches (deduplicated for ever by terminal and
sequence and by idempotency key, hash chains checked), the results feed of deferred
authorizations, merchant-presented order status and terminal configuration.

Terminals must be registered first: 'acquirerd terminals add ID' prints the terminal's
secret once, as the 64 hex digits of posagent's key file; provision it on the terminal.
The terminal and acquirerd derive from it the request-signing key and the journal's chain
and credential-tag keys, so every batch's records are checked (hash, HMAC, credential).
Secrets are stored encrypted under the master key (--master-key-file, created with mode
0600 when missing).

Simulated decisions, by the last two digits of the amount in minor units:
  51 declined (insufficient funds)     52 declined (payment code expired)
  61 offline record declined after upload
  91 authorization hangs 30 s, then 503 (the terminal's timeout path)
  92 503 on the first attempt, approved on the next
  93 429 Retry-After: 1 on the first attempt, approved on the next
Orders: a reference is pending on the first poll and paid on the second; one ending in
-EXPIRE expires and one ending in -CANCEL is canceled instead.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" || dsn == "" {
				return usageError{errors.New("acquirerd needs --listen ADDR and --db sqlite:PATH")}
			}
			store, err := openStore(dsn, keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			srv := &http.Server{Handler: acquirer.New(store, acquirer.Options{Log: log, VerifyChain: acquirer.VerifyJournalRecord}), ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(stdout, "acquirerd listening on http://%s\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
				shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return srv.Shutdown(shutdown)
			}
		},
	}
	root.PersistentFlags().StringVar(&dsn, "db", os.Getenv("ACQUIRERD_DB"), "store: sqlite:PATH (env ACQUIRERD_DB)")
	root.PersistentFlags().StringVar(&keyFile, "master-key-file", os.Getenv("ACQUIRERD_MASTER_KEY_FILE"), "32-byte key that encrypts terminal secrets (default: DB path + .key)")
	root.Flags().StringVar(&listen, "listen", "", "address to listen on, e.g. 127.0.0.1:8443")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true

	terminals := &cobra.Command{Use: "terminals", Short: "Manage registered terminals", Args: cobra.NoArgs}
	var policyMax int64
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a terminal and print its new secret (shown only this once)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{errors.New("terminals add takes one terminal ID")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if dsn == "" {
				return usageError{errors.New("terminals add needs --db sqlite:PATH")}
			}
			id := args[0]
			if len(id) > 64 || strings.ContainsAny(id, "/ \t\n") {
				return fmt.Errorf("terminal ID %q must be at most 64 characters without '/' or spaces", id)
			}
			store, err := openStore(dsn, keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			secret := make([]byte, offline.KeySize)
			rand.Read(secret)
			defer clear(secret)
			policy := wire.Policy{MethodsOffline: []string{"emv-cpm", "wallet-code"}, MaxAmount: map[string]int64{"CNY": policyMax},
				MaxOutstanding: map[string]int64{"CNY": 20 * policyMax}, MaxCount: 200, MaxAgeSeconds: 72 * 3600}
			if err := store.AddTerminal(cmd.Context(), id, secret, policy); err != nil {
				return fmt.Errorf("add terminal: %w", err)
			}
			fmt.Fprintf(stdout, "terminal %s registered; its secret (shown only now): write this line to the terminal's key file (mode 0600):\n%s\n", id, hex.EncodeToString(secret))
			return nil
		},
	}
	add.Flags().Int64Var(&policyMax, "offline-max", 50000, "offline limit per sale in CNY minor units")
	terminals.AddCommand(add)
	root.AddCommand(terminals)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "acquirerd: "+err.Error())
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown") {
			return 2
		}
		return 1
	}
	return 0
}

// openStore opens the store named by dsn.
func openStore(dsn, keyFile string) (acquirer.Store, error) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
			return nil, errors.New("open store: the PostgreSQL store is not built yet; use --db sqlite:PATH")
		}
		return nil, usageError{fmt.Errorf("--db %q must be sqlite:PATH", dsn)}
	}
	if keyFile == "" {
		keyFile = path + ".key"
	}
	key, err := masterKey(keyFile)
	if err != nil {
		return nil, err
	}
	return acquirer.OpenSQLite(path, key)
}

// masterKey reads the 32-byte key (64 hex digits) at path, creating it with mode 0600 if it
// does not exist. A key readable by group or others is refused.
func masterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key := make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create master key: %w", err)
		}
		if err := os.WriteFile(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create master key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read master key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("master key %s must hold 64 hex digits", path)
	}
	return key, nil
}
