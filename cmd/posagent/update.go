package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/internal/update"
)

func init() { commands = append(commands, (*Main).updateCommand) }

// Where a terminal keeps its trusted update keys and its installed versions.
const (
	defaultUpdateKeys  = "/etc/posagent/update-keys"
	defaultUpdateRoot  = "/usr/lib/posagent"
	defaultRestartCmd  = "systemctl restart posagent"
	defaultHealthURL   = "http://127.0.0.1:7480/v1/status"
	defaultUpdateLimit = 60 * time.Second
)

func (m *Main) updateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Signed updates: make keys, sign a binary, verify and apply a bundle with automatic rollback",
		Long: `update moves a terminal to a new posagent binary safely.

The vendor makes a key pair once (keygen) and signs each release for each architecture
(sign): a bundle is a manifest {version, arch, sha256, size, key_id, created} signed with
ed25519, followed by the binary, which the manifest binds by its SHA-256 and size.

On the terminal, verify checks a bundle against the trusted public keys (` + defaultUpdateKeys + `/*.pub;
rotate a key by adding the new .pub file, then removing the old one once every release is
signed with the new key), and apply installs it: beside the current version under
` + defaultUpdateRoot + `/versions/<version>/, current switched atomically, the service restarted,
and the previous version switched back and restarted on its own unless the new one answers
healthy within the deadline. The journal is never touched.

Exit status: 0 done, 1 refused or rolled back (the reason on stderr), 2 usage error.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(m.updateKeygenCommand(), m.updateSignCommand(), m.updateVerifyCommand(), m.updateApplyCommand(), m.updateStatusCommand())
	return cmd
}

func (m *Main) updateKeygenCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen --out DIR",
		Short: "Make an ed25519 update-signing key pair: DIR/<key id>.key (0600) and DIR/<key id>.pub",
		Long: `keygen makes the vendor's signing key: DIR/<key id>.key is the private key (mode 0600:
keep it offline), DIR/<key id>.pub the public key to install on terminals in
` + defaultUpdateKeys + `/. The key id is the first 8 bytes of the public key's SHA-256, in hex.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("keygen needs --out DIR")}
			}
			id, priv, pub, err := update.GenerateKey(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(m.Stdout, "key id %s\nprivate key %s (keep it secret)\npublic key %s (install it in %s/)\n", id, priv, pub, defaultUpdateKeys)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write the key pair into")
	return cmd
}

func (m *Main) updateSignCommand() *cobra.Command {
	var key, ver, arch, out string
	cmd := &cobra.Command{
		Use:   "sign --key K --version V --arch A BINARY --out BUNDLE",
		Short: "Sign a posagent binary into an update bundle",
		Long: `sign writes BUNDLE: the manifest (version, arch, the binary's SHA-256 and size, the key id,
the time), its ed25519 signature with the private key K, and the binary.
--arch is amd64, arm64 or armv7; --version is MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] and
should be the version the binary reports (the health check after apply insists on it).`,
		Args: exactArgs(1, "the BINARY to sign"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" || ver == "" || arch == "" || out == "" {
				return usageError{errors.New("sign needs --key, --version, --arch and --out")}
			}
			if err := update.CheckArch(arch); err != nil {
				return usageError{err}
			}
			if err := update.CheckVersion(ver); err != nil {
				return usageError{err}
			}
			priv, err := update.LoadPrivateKey(key)
			if err != nil {
				return withHint(invalid(err), "make one with 'posagent update keygen'")
			}
			bin, err := os.ReadFile(args[0])
			if err != nil {
				return invalid(err)
			}
			b, man, err := update.Sign(priv, ver, arch, bin, time.Now())
			if err != nil {
				return invalid(err)
			}
			if err := writeFileAtomic(out, b, 0o644); err != nil {
				return err
			}
			return printJSON(m, man)
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the private key file (from keygen)")
	cmd.Flags().StringVar(&ver, "version", "", "the binary's version")
	cmd.Flags().StringVar(&arch, "arch", "", "the binary's architecture: amd64, arm64 or armv7")
	cmd.Flags().StringVar(&out, "out", "", "the bundle file to write")
	return cmd
}

// verifyFlags are the flags verify and apply share.
type verifyFlags struct {
	pub, keys, arch, running string
	allowDowngrade           bool
}

func (f *verifyFlags) add(cmd *cobra.Command, withPub bool) {
	if withPub {
		cmd.Flags().StringVar(&f.pub, "pub", "", "trust this one public key file instead of --keys")
	}
	cmd.Flags().StringVar(&f.keys, "keys", defaultUpdateKeys, "directory of trusted public keys (*.pub)")
	cmd.Flags().StringVar(&f.arch, "arch", update.RuntimeArch(), "the terminal's architecture (default: this binary's)")
	cmd.Flags().BoolVar(&f.allowDowngrade, "allow-downgrade", false, "accept a version that is not newer than the running one")
}

func (f *verifyFlags) keyring() (update.Keyring, error) {
	if f.pub != "" {
		k, err := update.LoadPublicKey(f.pub)
		if err != nil {
			return nil, invalid(err)
		}
		return k, nil
	}
	k, err := update.LoadKeyring(f.keys)
	if err != nil {
		return nil, withHint(invalid(err), "install the vendor's public key in "+defaultUpdateKeys+"/ or pass --pub")
	}
	return k, nil
}

func (f *verifyFlags) policy() update.Policy {
	running := f.running
	if running == "" {
		running = Version()
	}
	return update.Policy{Arch: f.arch, Running: running, AllowDowngrade: f.allowDowngrade}
}

func (m *Main) updateVerifyCommand() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [--pub P | --keys DIR] BUNDLE",
		Short: "Check an update bundle and print its manifest",
		Long: `verify checks BUNDLE as apply would and prints its manifest. It is refused (exit 1, the
reason on stderr) when it is truncated or tampered with, signed by a key that is not
trusted, has a bad signature or a binary whose digest is not the manifest's, is for
another architecture than this terminal's, or is not newer than the running version
(--running-version, default this binary's; --allow-downgrade accepts it).`,
		Args: exactArgs(1, "the BUNDLE file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := f.keyring()
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return invalid(err)
			}
			bd, err := update.Verify(b, keys, f.policy())
			if err != nil {
				return refused(args[0], err)
			}
			return printJSON(m, bd.Manifest)
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&f.running, "running-version", "", "the version to compare with (default: this binary's)")
	return cmd
}

// refused wraps a verification refusal with a hint for the operator.
func refused(bundle string, err error) error {
	hint := "do not install it; get the bundle again from the vendor"
	switch {
	case errors.Is(err, update.ErrUnknownKey):
		hint = "install the vendor's new public key in " + defaultUpdateKeys + "/ if the key was rotated"
	case errors.Is(err, update.ErrArch):
		hint = "get the bundle built for this terminal's architecture"
	case errors.Is(err, update.ErrDowngrade):
		hint = "pass --allow-downgrade to go back to an older version on purpose"
	}
	return withHint(invalid(fmt.Errorf("%s refused: %w", bundle, err)), hint)
}

// applyFlags configure the restart and the health check of apply and status.
type applyFlags struct {
	root, restart, healthURL, token, config string
	deadline                                time.Duration
}

func (f *applyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.root, "root", defaultUpdateRoot, "the directory of installed versions and the current/previous links")
	cmd.Flags().StringVar(&f.restart, "restart-command", defaultRestartCmd, "shell command that restarts the agent on ROOT/current/posagent")
	cmd.Flags().StringVar(&f.healthURL, "health-url", "", "the agent's status URL (default: from --config, else "+defaultHealthURL+")")
	cmd.Flags().StringVar(&f.token, "token", "", "the local API's bearer token (default: from --config, else $POSAGENT_API_TOKEN)")
	cmd.Flags().StringVar(&f.config, "config", "", "the agent's config, for its API address and token")
	cmd.Flags().DurationVar(&f.deadline, "deadline", defaultUpdateLimit, "how long the new version has to become healthy")
}

func (f *applyFlags) applier(m *Main, cmd *cobra.Command) (*update.Applier, *update.HTTPHealth, error) {
	if f.deadline <= 0 {
		return nil, nil, usageError{fmt.Errorf("--deadline %s must be positive", f.deadline)}
	}
	h := &update.HTTPHealth{URL: defaultHealthURL, Token: os.Getenv("POSAGENT_API_TOKEN")}
	if f.config != "" {
		api, err := newLocalAPI(f.config)
		if err != nil {
			return nil, nil, err
		}
		h.URL, h.Token = api.base+"/v1/status", api.token
		h.Client = &http.Client{Timeout: 2 * time.Second, Transport: api.http.Transport}
	}
	if f.healthURL != "" {
		h.URL = f.healthURL
	}
	if f.token != "" {
		h.Token = f.token
	}
	restart := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, f.deadline)
		defer cancel()
		c := exec.CommandContext(ctx, "/bin/sh", "-c", f.restart)
		c.Stdout, c.Stderr = m.Stderr, m.Stderr
		c.WaitDelay = time.Second // a background child keeping the output open must not block apply
		if err := c.Run(); err != nil {
			return fmt.Errorf("%s: %w", f.restart, err)
		}
		return nil
	}
	a := &update.Applier{Layout: update.Layout{Root: f.root}, Restart: restart, Health: h.Check, Deadline: f.deadline,
		Log: func(format string, args ...any) { fmt.Fprintf(m.Stderr, "posagent update: "+format+"\n", args...) }}
	return a, h, nil
}

func (m *Main) updateApplyCommand() *cobra.Command {
	var vf verifyFlags
	var af applyFlags
	cmd := &cobra.Command{
		Use:   "apply BUNDLE [--keys DIR] [--root DIR] [--health-url URL] [--deadline D]",
		Short: "Install a verified bundle, switch to it, and roll back on its own if it is not healthy",
		Long: `apply verifies BUNDLE (as verify does, against the version current under --root) before it
touches anything, then writes the binary to ROOT/versions/<version>/posagent, points
ROOT/previous at the running version and ROOT/current at the new one (each an atomic
rename of a new symlink), and runs --restart-command. The new version must then answer
GET /v1/status within --deadline: 200, its own version, the journal readable, and the
devices that were connected before connected again. Otherwise (it exits at once, hangs,
or reports a problem) current is switched back to the previous version and the service
restarted again. The journal is not touched either way.

Each step is recorded in ROOT/update-state.json: an apply interrupted by a crash or a
power cut is resolved by the next apply or by 'posagent update status' (before the
switch: nothing changed; after it, not yet found healthy: the previous version comes back).

Exit status: 0 the new version is running and healthy, 1 refused (nothing changed) or
rolled back.`,
		Args: exactArgs(1, "the BUNDLE file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, h, err := af.applier(m, cmd)
			if err != nil {
				return err
			}
			keys, err := vf.keyring()
			if err != nil {
				return err
			}
			a.Keys, a.Policy = keys, vf.policy()
			b, err := os.ReadFile(args[0])
			if err != nil {
				return invalid(err)
			}
			bctx, cancel := context.WithTimeout(cmd.Context(), 3*time.Second)
			if err := h.Baseline(bctx); err != nil {
				fmt.Fprintf(m.Stderr, "posagent update: the running agent does not answer (%v): no device baseline\n", oneLine(err.Error()))
			}
			cancel()
			r, err := a.Apply(cmd.Context(), b)
			switch {
			case errors.Is(err, update.ErrRolledBack):
				if r.PreviousHealthy != nil {
					err = fmt.Errorf("%w; %s is not healthy either: %v", err, r.State.From, r.PreviousHealthy)
				}
				return withHint(err, "the state is in "+a.Layout.Root+"/update-state.json; the failed version stays in versions/ for a look")
			case update.IsRefusal(err):
				return refused(args[0], err)
			case err != nil:
				return err
			}
			fmt.Fprintf(m.Stdout, "posagent %s is running and healthy (%s after the restart); previous %s\n", r.State.To,
				r.Elapsed.Round(time.Millisecond), r.State.From)
			return nil
		},
	}
	vf.add(cmd, false)
	af.add(cmd)
	return cmd
}

func (m *Main) updateStatusCommand() *cobra.Command {
	var af applyFlags
	cmd := &cobra.Command{
		Use:   "status [--root DIR]",
		Short: "Show the installed versions and the last apply; finish an apply a crash interrupted",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, _, err := af.applier(m, cmd)
			if err != nil {
				return err
			}
			s, err := a.Layout.ReadState()
			if err != nil {
				return err
			}
			if s.Unfinished() {
				fmt.Fprintf(m.Stderr, "posagent update: the apply of %s was interrupted (%s): resolving it\n", s.To, s.Phase)
				r, err := a.Resolve(cmd.Context())
				if err != nil {
					return err
				}
				s = r.State
			}
			cur, err := a.Layout.Current()
			if err != nil {
				return err
			}
			prev, err := a.Layout.Previous()
			if err != nil {
				return err
			}
			out := map[string]any{"root": a.Layout.Root, "current": cur, "previous": prev}
			if s.Phase != "" {
				out["last_apply"] = s
			}
			return printJSON(m, out)
		},
	}
	af.add(cmd)
	return cmd
}

func printJSON(m *Main, v any) error {
	enc := json.NewEncoder(m.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFileAtomic writes path through a temporary file beside it.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
