package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/acquirer"
	"github.com/posagent/posagent/sync/wire"
)

// terminalsCommand is `acquirerd terminals add|ls|rotate|revoke`.
func terminalsCommand(dsn, keyFile *string, stdout io.Writer) *cobra.Command {
	terminals := &cobra.Command{Use: "terminals", Short: "Manage registered terminals", Args: cobra.NoArgs}
	oneID := func(name string) cobra.PositionalArgs {
		return func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError{fmt.Errorf("terminals %s takes one terminal ID", name)}
			}
			return nil
		}
	}
	needDB := func(name string) error {
		if *dsn == "" {
			return usageError{fmt.Errorf("terminals %s needs --db sqlite:PATH or postgres://…", name)}
		}
		return nil
	}
	admin := func(cmd *cobra.Command) (acquirer.Store, acquirer.TerminalAdmin, error) {
		store, err := openStore(cmd.Context(), *dsn, *keyFile)
		if err != nil {
			return nil, nil, err
		}
		a, ok := store.(acquirer.TerminalAdmin)
		if !ok {
			store.Close()
			return nil, nil, errors.New("this store cannot manage terminals")
		}
		return store, a, nil
	}

	var policyMax int64
	var b bundleFlags
	add := &cobra.Command{
		Use:   "add ID [--bundle FILE --url URL [--ca FILE]]",
		Short: "Register a terminal and print its new secret (shown only this once), or write it in a bundle",
		Long: `add registers a terminal with a new secret. Without --bundle it prints the secret once,
as the line of the terminal's key file. With --bundle FILE it prints nothing secret and
writes FILE (mode 0600): the terminal's id, the acquirer's URL as the terminal reaches it
(--url) and its secret, with --ca the acquirer's CA certificate; carry it to the terminal and
run 'posagent provision --bundle FILE' there, then delete it.`,
		Args: oneID("add"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needDB("add"); err != nil {
				return err
			}
			id := args[0]
			if len(id) > 64 || id == "" || strings.ContainsAny(id, "/ \t\n") {
				return fmt.Errorf("terminal ID %q must be 1 to 64 characters without '/' or spaces", id)
			}
			if err := b.check(); err != nil {
				return err
			}
			store, err := openStore(cmd.Context(), *dsn, *keyFile)
			if err != nil {
				return err
			}
			defer store.Close()
			secret := newSecret()
			defer clear(secret)
			policy := wire.Policy{MethodsOffline: []string{"emv-cpm", "wallet-code"}, MaxAmount: map[string]int64{"CNY": policyMax},
				MaxOutstanding: map[string]int64{"CNY": 20 * policyMax}, MaxCount: 200, MaxAgeSeconds: 72 * 3600}
			if err := store.AddTerminal(cmd.Context(), id, secret, policy); err != nil {
				if errors.Is(err, acquirer.ErrExists) {
					return fmt.Errorf("add terminal: %w (to give it a new secret: acquirerd terminals rotate %s)", err, id)
				}
				return fmt.Errorf("add terminal: %w", err)
			}
			return b.emit(stdout, id, secret, "registered")
		},
	}
	add.Flags().Int64Var(&policyMax, "offline-max", 50000, "offline limit per sale in CNY minor units")
	b.register(add)
	terminals.AddCommand(add)

	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls [--json]",
		Short: "List the registered terminals: created, rotation grace, revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := needDB("ls"); err != nil {
				return err
			}
			store, a, err := admin(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			list, err := a.ListTerminals(cmd.Context())
			if err != nil {
				return fmt.Errorf("list terminals: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(stdout)
				for _, t := range list {
					if err := enc.Encode(t); err != nil {
						return err
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TERMINAL\tCREATED\tSTATE")
			now := time.Now()
			for _, t := range list {
				state := "active"
				switch {
				case !t.RevokedAt.IsZero():
					state = "revoked " + t.RevokedAt.Format(time.RFC3339)
				case t.GraceUntil.After(now):
					state = "active, previous secret accepted until " + t.GraceUntil.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.CreatedAt.Format(time.RFC3339), state)
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	terminals.AddCommand(ls)

	var grace time.Duration
	var rb bundleFlags
	rotate := &cobra.Command{
		Use:   "rotate ID [--grace 24h] [--bundle FILE --url URL [--ca FILE]]",
		Short: "Give a terminal a new secret; the old one is accepted until the grace period ends",
		Args:  oneID("rotate"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needDB("rotate"); err != nil {
				return err
			}
			if grace < 0 {
				return usageError{errors.New("--grace must not be negative")}
			}
			if err := rb.check(); err != nil {
				return err
			}
			store, a, err := admin(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			secret := newSecret()
			defer clear(secret)
			if err := a.RotateTerminal(cmd.Context(), args[0], secret, grace); err != nil {
				if errors.Is(err, acquirer.ErrNotFound) {
					return fmt.Errorf("rotate: %w (see acquirerd terminals ls)", err)
				}
				return fmt.Errorf("rotate: %w", err)
			}
			return rb.emit(stdout, args[0], secret, fmt.Sprintf("rotated (the previous secret is accepted for %s more)", grace))
		},
	}
	rotate.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the previous secret stays accepted")
	rb.register(rotate)
	terminals.AddCommand(rotate)

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Refuse every request of a terminal from now on (401)",
		Args:  oneID("revoke"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := needDB("revoke"); err != nil {
				return err
			}
			store, a, err := admin(cmd)
			if err != nil {
				return err
			}
			defer store.Close()
			if err := a.RevokeTerminal(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, acquirer.ErrNotFound) {
					return fmt.Errorf("revoke: %w (see acquirerd terminals ls)", err)
				}
				return fmt.Errorf("revoke: %w", err)
			}
			fmt.Fprintf(stdout, "terminal %s revoked: its requests are refused from now on\n", args[0])
			return nil
		},
	}
	terminals.AddCommand(revoke)
	return terminals
}

func newSecret() []byte {
	secret := make([]byte, offline.KeySize)
	rand.Read(secret)
	return secret
}

// bundleFlags are add's and rotate's --bundle, --url and --ca.
type bundleFlags struct{ file, url, ca string }

func (b *bundleFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&b.file, "bundle", "", "write the terminal's provisioning bundle (JSON, mode 0600) to FILE instead of printing the secret")
	cmd.Flags().StringVar(&b.url, "url", "", "with --bundle: the acquirer's URL as the terminal reaches it (http[s]://HOST:PORT)")
	cmd.Flags().StringVar(&b.ca, "ca", "", "with --bundle: the acquirer's CA certificate (PEM) to put in the bundle")
}

func (b *bundleFlags) check() error {
	if b.file == "" {
		if b.url != "" || b.ca != "" {
			return usageError{errors.New("--url and --ca go with --bundle FILE")}
		}
		return nil
	}
	if !strings.HasPrefix(b.url, "http://") && !strings.HasPrefix(b.url, "https://") {
		return usageError{errors.New("--bundle needs --url http[s]://HOST:PORT, the acquirer's address as the terminal reaches it")}
	}
	if b.ca != "" && !strings.HasPrefix(b.url, "https://") {
		return usageError{errors.New("--ca needs an https:// --url")}
	}
	return nil
}

// emit writes the bundle, or prints the secret when there is no --bundle.
func (b *bundleFlags) emit(stdout io.Writer, id string, secret []byte, what string) error {
	if b.file == "" {
		fmt.Fprintf(stdout, "terminal %s %s; its secret (shown only now): write this line to the terminal's key file (mode 0600):\n%s\n", id, what, hex.EncodeToString(secret))
		return nil
	}
	bundle := wire.Bundle{Terminal: id, AcquirerURL: b.url, Secret: hex.EncodeToString(secret)}
	if b.ca != "" {
		pem, err := os.ReadFile(b.ca)
		if err != nil {
			return fmt.Errorf("read --ca: %w (the secret was not written: run 'acquirerd terminals rotate %s --bundle …')", err, id)
		}
		bundle.CAPEM = string(pem)
	}
	data, _ := json.MarshalIndent(bundle, "", "  ")
	if err := writeFileAtomic(b.file, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the bundle: %w (the secret was lost: run 'acquirerd terminals rotate %s --bundle …')", err, id)
	}
	fmt.Fprintf(stdout, "terminal %s %s; its bundle is %s (it holds the secret: carry it to the terminal, run 'posagent provision --bundle %s', then delete it)\n",
		id, what, b.file, filepath.Base(b.file))
	return nil
}

// writeFileAtomic writes path through a temporary file in its directory and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
