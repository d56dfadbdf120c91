// Command acquirerd is posagent's reference acquirer endpoint: the sync protocol of
// sync/openapi.yaml over HTTPS (or HTTP for tests), on an embedded SQLite store or, for
// fleet scale, on PostgreSQL shared by any number of stateless acquirerd nodes.
//
//	acquirerd --listen :8443 --db sqlite:acquirer.db --tls-cert cert.pem --tls-key key.pem [--client-ca devices.pem]
//	acquirerd --listen :8443 --db postgres://acq@db/acq --master-key-file /etc/acquirerd/master.key ...
//	acquirerd terminals add T1 --db sqlite:acquirer.db     prints T1's secret, once
//	acquirerd ledger --db sqlite:acquirer.db [--terminal T1] [--json]
//	acquirerd totals --db sqlite:acquirer.db --terminal T1 --from 2026-12-01T08:00:00Z --to 2026-12-01T20:00:00Z [--json]
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/sync/acquirer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var listen, dsn, keyFile, tlsCert, tlsKey, clientCA string
	var simDelay, simPending time.Duration
	root := &cobra.Command{
		Use:   "acquirerd --listen ADDR --db sqlite:PATH|postgres://…",
		Short: "posagent's reference acquirer endpoint",
		Long: `acquirerd serves the acquirer side of posagent's sync protocol: authenticated ping,
online authorization (with its status by sale id and its reversal), online refunds,
store-and-forward batches (deduplicated for ever by terminal and sequence and by
idempotency key, hash chains checked; refund records decided at upload), the results feed
of deferred authorizations and refunds, merchant-presented order status and close, totals
per period and terminal configuration.

Terminals must be registered first: 'acquirerd terminals add ID' prints the terminal's
secret once, as the 64 hex digits of posagent's key file; provision it on the terminal.
The terminal and acquirerd derive from it the request-signing key and the journal's chain
and credential-tag keys, so every batch's records are checked (hash, HMAC, credential).
Secrets are stored encrypted under the master key (--master-key-file, created with mode
0600 when missing).

Stores: --db sqlite:PATH is one embedded file (the master key defaults to PATH.key).
--db postgres://USER@HOST/DB (or a libpq key=value string) is PostgreSQL for fleet scale:
any number of acquirerd nodes share the database, which deduplicates and orders
everything; migrations are applied at start. Every node needs the same
--master-key-file; a node with another key refuses to start.

TLS: --tls-cert and --tls-key serve HTTPS (do so everywhere outside tests). --client-ca
FILE also requires a client certificate signed by that CA from every terminal (mTLS with
per-device certificates): its CommonName must be the terminal's id, the one that signs
the request, else 403.

Simulated decisions, by the last two digits of the amount in minor units:
  51 declined (insufficient funds)     52 declined (payment code expired)
  61 offline record declined after upload
  91 authorization hangs 30 s, then 503 (the terminal's timeout path)
  92 503 on the first attempt, approved on the next
  93 429 Retry-After: 1 on the first attempt, approved on the next
  94 approved and stored, then the connection is closed without an answer
  95 held for --sim-delay (status not_found meanwhile), then approved and stored
     (reversed if a reversal arrived meanwhile), then answered: after the client's timeout
  96 pending_customer, approved --sim-pending later
  97 pending_customer, declined --sim-pending later (customer canceled in the wallet)
  98 pending_customer until the terminal reverses it
  99 approved and stored, then answered 502 (a 5xx after the money moved)
94 to 99 answer so on every attempt; the terminal asks GET /v1/authorizations/{id} and
reverses with POST /v1/authorizations/{id}/reversal. 'acquirerd ledger' shows the result.
Orders: a reference is pending on the first poll and paid on the second; one ending in
-EXPIRE expires and one ending in -CANCEL is canceled instead. POST
/v1/orders/{reference}/close closes a pending order (closed: never paid later) and
refunds a paid one (refunded); one ending in -RACE is paid at the moment the close
arrives, so the close finds it paid and refunds it.
Refunds (POST /v1/refunds, and refund records uploaded stored) are not simulated: they are
declined when the sale is unknown for the terminal, not approved, in another currency, or
when the amount exceeds what is left of it. 'acquirerd totals' prints a period's totals.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" || dsn == "" {
				return usageError{errors.New("acquirerd needs --listen ADDR and --db sqlite:PATH or postgres://…")}
			}
			if simDelay <= 0 || simPending <= 0 {
				return usageError{errors.New("--sim-delay and --sim-pending must be positive durations, e.g. 8s")}
			}
			tlsConfig, err := serverTLS(tlsCert, tlsKey, clientCA)
			if err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), dsn, keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			log := slog.New(slog.NewJSONHandler(stderr, nil))
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			handler := acquirer.New(store, acquirer.Options{Log: log, VerifyChain: acquirer.VerifyJournalRecord, RequireClientCert: clientCA != "",
				SimDelay: simDelay, SimPending: simPending})
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsConfig}
			scheme, serve := "http", func() error { return srv.Serve(ln) }
			if tlsConfig != nil {
				scheme, serve = "https", func() error { return srv.ServeTLS(ln, "", "") }
			} else if ip := tcpIP(ln.Addr()); ip == nil || !ip.IsLoopback() {
				log.Warn("serving plain HTTP on a non-loopback address: use --tls-cert and --tls-key outside tests", "addr", ln.Addr().String())
			}
			fmt.Fprintf(stdout, "acquirerd listening on %s://%s\n", scheme, ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- serve() }()
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
	root.PersistentFlags().StringVar(&dsn, "db", os.Getenv("ACQUIRERD_DB"), "store: sqlite:PATH or postgres://USER@HOST/DB (env ACQUIRERD_DB)")
	root.PersistentFlags().StringVar(&keyFile, "master-key-file", os.Getenv("ACQUIRERD_MASTER_KEY_FILE"), "32-byte key that encrypts terminal secrets (SQLite default: DB path + .key; required with PostgreSQL)")
	root.Flags().StringVar(&listen, "listen", "", "address to listen on, e.g. 127.0.0.1:8443")
	root.Flags().StringVar(&tlsCert, "tls-cert", os.Getenv("ACQUIRERD_TLS_CERT"), "serve HTTPS with this certificate (PEM, chain included)")
	root.Flags().StringVar(&tlsKey, "tls-key", os.Getenv("ACQUIRERD_TLS_KEY"), "the --tls-cert certificate's private key (PEM)")
	root.Flags().StringVar(&clientCA, "client-ca", os.Getenv("ACQUIRERD_CLIENT_CA"), "require client certificates signed by these CAs (PEM), CommonName = terminal id (mTLS)")
	root.Flags().DurationVar(&simDelay, "sim-delay", 8*time.Second, "amounts ending in 95: how long the authorization is held before it is approved")
	root.Flags().DurationVar(&simPending, "sim-pending", 3*time.Second, "amounts ending in 96 and 97: how long they stay pending_customer")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.CompletionOptions.DisableDefaultCmd = true
	root.Version = Version()
	root.SetVersionTemplate("acquirerd " + Version() + "\n")

	root.AddCommand(terminalsCommand(&dsn, &keyFile, stdout))
	root.AddCommand(ledgerCommand(&dsn, &keyFile, stdout))
	root.AddCommand(totalsCommand(&dsn, &keyFile, stdout))
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

// openStore opens the store named by dsn: sqlite:PATH, or a PostgreSQL URL or key=value
// connection string.
func openStore(ctx context.Context, dsn, keyFile string) (acquirer.Store, error) {
	path, ok := strings.CutPrefix(dsn, "sqlite:")
	if !ok {
		if !isPostgres(dsn) {
			return nil, usageError{fmt.Errorf("--db %s must be sqlite:PATH or postgres://USER@HOST/DB", redactDSN(dsn))}
		}
		if keyFile == "" {
			return nil, usageError{errors.New("--db postgres://… needs --master-key-file (or ACQUIRERD_MASTER_KEY_FILE): the same file on every node")}
		}
		key, err := masterKey(keyFile)
		if err != nil {
			return nil, err
		}
		defer clear(key)
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return acquirer.OpenPostgres(ctx, dsn, key)
	}
	if err := checkSQLitePath(path); err != nil {
		return nil, err
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

// sqliteMagic opens every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkSQLitePath refuses, before anything is written, an empty path, a directory and a
// file that is not a SQLite database. A missing or empty file is a new store.
func checkSQLitePath(path string) error {
	if path == "" {
		return usageError{errors.New("--db sqlite: needs a path, e.g. sqlite:/var/lib/acquirerd/acquirer.db")}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open acquirer store: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("--db sqlite:%s is a directory, not a database file", path)
	}
	head := make([]byte, len(sqliteMagic))
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil
	}
	if string(head[:n]) != sqliteMagic {
		return fmt.Errorf("--db sqlite:%s is not a SQLite database (nothing was written to it): check the path", path)
	}
	return nil
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

// isPostgres reports whether dsn names a PostgreSQL database: a postgres:// URL or a libpq
// key=value connection string.
func isPostgres(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return true
	}
	for _, kv := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return false
		}
	}
	return strings.Contains(dsn, "=") && (strings.Contains(dsn, "host=") || strings.Contains(dsn, "dbname="))
}

// redactDSN hides a password in a URL for error messages.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	if strings.Contains(dsn, "password") {
		return "(a connection string with a password)"
	}
	return fmt.Sprintf("%q", dsn)
}

// serverTLS returns the listener's TLS configuration, or nil for plain HTTP.
func serverTLS(certFile, keyFile, clientCA string) (*tls.Config, error) {
	switch {
	case certFile == "" && keyFile == "" && clientCA == "":
		return nil, nil
	case certFile == "" || keyFile == "":
		return nil, usageError{errors.New("--tls-cert and --tls-key go together (and --client-ca needs both)")}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, fmt.Errorf("read client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client CA %s holds no PEM certificate", clientCA)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func tcpIP(a net.Addr) net.IP {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP
	}
	return nil
}
