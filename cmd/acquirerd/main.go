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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/signing"
	"github.com/posagent/posagent/sync/wire"
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
	var limits acquirer.Limits
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
when the amount exceeds what is left of it. 'acquirerd totals' prints a period's totals.

Admission control: at most --max-in-flight signed requests are handled at once (all
terminals together; one more waits up to --queue-wait for a slot) and at most
--per-terminal of one terminal; beyond that the answer is 429 with Retry-After
(--retry-after), which the terminals honour, instead of a timeout or a 5xx. A body above
--max-body bytes, or a batch above --max-batch records, is answered 413. GET /metrics
exports the request latency by route and result, batch sizes, 429s and records; the
Grafana dashboard configs/grafana-acquirerd.json charts them.`,
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
			if errors.Is(err, syscall.EADDRINUSE) {
				return fmt.Errorf("listen on %s: %w (hint: another acquirerd or program holds the port: stop it, or give --listen another address)", listen, err)
			}
			if err != nil {
				return fmt.Errorf("listen on %s: %w", listen, err)
			}
			if limits.MaxInFlight < 0 || limits.PerTerminal < 0 || limits.MaxBody < 0 || limits.MaxBatch < 0 || limits.QueueWait < 0 {
				return usageError{errors.New("--max-in-flight, --per-terminal, --max-body, --max-batch and --queue-wait must not be negative (0: the default)")}
			}
			handler := acquirer.New(store, acquirer.Options{Log: log, VerifyChain: acquirer.VerifyJournalRecord, RequireClientCert: clientCA != "",
				SimDelay: simDelay, SimPending: simPending, Limits: limits})
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
	root.Flags().IntVar(&limits.MaxInFlight, "max-in-flight", envInt("ACQUIRERD_MAX_IN_FLIGHT", 0), fmt.Sprintf("signed requests handled at once, all terminals together; 0: %d on SQLite, %d on PostgreSQL (4 per CPU) (env ACQUIRERD_MAX_IN_FLIGHT)", acquirer.DefaultMaxInFlightSQLite, acquirer.DefaultMaxInFlight()))
	root.Flags().DurationVar(&limits.QueueWait, "queue-wait", envDuration("ACQUIRERD_QUEUE_WAIT", acquirer.DefaultQueueWait), "how long a request waits for one of --max-in-flight before it is answered 429 (env ACQUIRERD_QUEUE_WAIT)")
	root.Flags().IntVar(&limits.PerTerminal, "per-terminal", envInt("ACQUIRERD_PER_TERMINAL", acquirer.DefaultPerTerminal), "requests of one terminal handled at once; one more is answered 429 (env ACQUIRERD_PER_TERMINAL)")
	root.Flags().DurationVar(&limits.RetryAfter, "retry-after", envDuration("ACQUIRERD_RETRY_AFTER", acquirer.DefaultRetryAfter), "the Retry-After of a 429, whole seconds (env ACQUIRERD_RETRY_AFTER)")
	root.Flags().Int64Var(&limits.MaxBody, "max-body", int64(envInt("ACQUIRERD_MAX_BODY", signing.MaxBody)), "largest request body in bytes, else 413 (at most the default; env ACQUIRERD_MAX_BODY)")
	root.Flags().IntVar(&limits.MaxBatch, "max-batch", envInt("ACQUIRERD_MAX_BATCH", wire.MaxBatch), "most records in one batch, else 413 (at most the default; env ACQUIRERD_MAX_BATCH)")
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

// openStore opens the store named by dsn (see acquirer.Open); a malformed --db is a usage
// error.
func openStore(ctx context.Context, dsn, keyFile string) (acquirer.Store, error) {
	store, err := acquirer.Open(ctx, dsn, keyFile)
	if errors.Is(err, acquirer.ErrDSN) {
		return nil, usageError{err}
	}
	return store, err
}

// envInt is the integer in the environment variable name, or def when it is unset or not
// a whole number.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

// envDuration is the duration in the environment variable name (e.g. 250ms), or def.
func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return def
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
