package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/internal/flock"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
	"github.com/posagent/posagent/sync/wire"
)

func init() { commands = append(commands, (*Main).provisionCommand) }

// provisionOptions are provision's flags.
type provisionOptions struct {
	bundle, configDir, stateDir, user string
	force                             bool
}

func (m *Main) provisionCommand() *cobra.Command {
	var o provisionOptions
	cmd := &cobra.Command{
		Use:   "provision --bundle FILE [--config-dir DIR] [--state-dir DIR] [--user NAME] [--force]",
		Short: "Provision this terminal from the acquirer's bundle and check that the acquirer answers",
		Long: `provision reads the bundle 'acquirerd terminals add ID --bundle FILE --url URL' wrote and
writes, each atomically (a temporary file and a rename):
  DIR/key             the terminal's secret (mode 0600)
  DIR/env             POSAGENT_TERMINAL, POSAGENT_ACQUIRER, POSAGENT_KEY_FILE, POSAGENT_STATE_DIR,
                      and a new POSAGENT_API_TOKEN when it has none (mode 0600; other lines kept)
  DIR/posagent.yaml   only when it does not exist (the package installs one)
  DIR/acquirer-ca.pem the acquirer's CA, when the bundle holds one
and the state directory (mode 0700). As root, the files and the state directory are given to
--user (posagent) when that user exists. A terminal already provisioned (DIR/key exists) is
left alone unless --force. It ends with an authenticated ping of the acquirer.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.bundle == "" {
				return usageError{errors.New("provision needs --bundle FILE (from 'acquirerd terminals add ID --bundle FILE --url URL')")}
			}
			return m.provision(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&o.bundle, "bundle", "", "the provisioning bundle from 'acquirerd terminals add --bundle'")
	cmd.Flags().StringVar(&o.configDir, "config-dir", "/etc/posagent", "where the key, env and config go")
	cmd.Flags().StringVar(&o.stateDir, "state-dir", "/var/lib/posagent", "the agent's state directory (the journal)")
	cmd.Flags().StringVar(&o.user, "user", "posagent", "as root: the service user that owns the key and the state directory")
	cmd.Flags().BoolVar(&o.force, "force", false, "replace the identity of a terminal already provisioned")
	return cmd
}

// readBundle reads and checks a provisioning bundle.
func readBundle(path string) (wire.Bundle, []byte, error) {
	var b wire.Bundle
	data, err := os.ReadFile(path)
	if err != nil {
		return b, nil, fmt.Errorf("read the bundle: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, nil, fmt.Errorf("bundle %s is not a provisioning bundle: %v (make it with 'acquirerd terminals add ID --bundle FILE --url URL')", path, err)
	}
	secret, err := hex.DecodeString(b.Secret)
	if err != nil || len(secret) != offline.KeySize {
		return b, nil, fmt.Errorf("bundle %s: the secret must be %d hex digits", path, 2*offline.KeySize)
	}
	if b.Terminal == "" || len(b.Terminal) > 64 || strings.ContainsAny(b.Terminal, "/ \t\n") {
		return b, nil, fmt.Errorf("bundle %s: terminal id %q is not valid", path, b.Terminal)
	}
	if !strings.HasPrefix(b.AcquirerURL, "http://") && !strings.HasPrefix(b.AcquirerURL, "https://") {
		return b, nil, fmt.Errorf("bundle %s: acquirer_url %q is not an http(s) URL", path, b.AcquirerURL)
	}
	return b, secret, nil
}

func (m *Main) provision(ctx context.Context, o provisionOptions) error {
	b, secret, err := readBundle(o.bundle)
	if err != nil {
		return err
	}
	defer clear(secret)
	keyPath := filepath.Join(o.configDir, "key")
	envPath := filepath.Join(o.configDir, "env")
	cfgPath := filepath.Join(o.configDir, "posagent.yaml")
	caPath := filepath.Join(o.configDir, "acquirer-ca.pem")
	if _, err := os.Stat(keyPath); err == nil && !o.force {
		return withHint(fmt.Errorf("this terminal is provisioned already (%s exists)", keyPath),
			"add --force to give it the bundle's identity (after 'acquirerd terminals rotate' the journal moves to the new secret)")
	} else if err == nil {
		release, err := m.moveJournal(ctx, o, b, secret, keyPath)
		if err != nil {
			return err
		}
		// Held until the new key is in place: an agent started meanwhile would find the
		// journal under a key it does not have.
		defer release()
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 && o.user != "" {
		if u, err := user.Lookup(o.user); err == nil {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
		}
	}
	for _, d := range []string{o.configDir, o.stateDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	if err := os.Chmod(o.stateDir, 0o700); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	if uid >= 0 {
		if err := os.Chown(o.stateDir, uid, gid); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	env, err := provisionEnv(envPath, map[string]string{
		"POSAGENT_TERMINAL": b.Terminal, "POSAGENT_ACQUIRER": b.AcquirerURL,
		"POSAGENT_KEY_FILE": keyPath, "POSAGENT_STATE_DIR": o.stateDir,
	})
	if err != nil {
		return err
	}
	// The key last: a terminal whose provisioning stopped half way is not "provisioned".
	type file struct {
		path     string
		data     []byte
		mode     fs.FileMode
		theirs   bool // owned by the service user, else root's (the env: systemd reads it)
		ifAbsent bool
	}
	files := []file{{path: envPath, data: env, mode: 0o600}}
	files = append(files, file{path: cfgPath, mode: 0o644, ifAbsent: true, data: fmt.Appendf(nil,
		"# written by posagent provision; per-terminal values are in %s\nterminal: %q\nstate_dir: %q\nkey_file: %q\nacquirer:\n  url: %q\n",
		envPath, b.Terminal, o.stateDir, keyPath, b.AcquirerURL)})
	if b.CAPEM != "" {
		files = append(files, file{path: caPath, data: []byte(b.CAPEM), mode: 0o644})
	}
	files = append(files, file{path: keyPath, data: []byte(hex.EncodeToString(secret) + "\n"), mode: 0o600, theirs: true})
	for _, f := range files {
		if f.ifAbsent {
			if _, err := os.Stat(f.path); err == nil {
				continue
			}
		}
		owner := -1
		if f.theirs {
			owner = uid
		}
		if err := writeAtomic(f.path, f.data, f.mode, owner, gid); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}

	key, err := offline.NewKey(secret)
	if err != nil {
		return err
	}
	client, err := bundleClient(b, key, o.configDir)
	if err != nil {
		return err
	}
	client.MaxAttempts = 1
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sent := time.Now()
	p, err := client.Ping(ctx)
	if err != nil {
		return fmt.Errorf("wrote %s's identity to %s, but the acquirer refused its ping: %w", b.Terminal, o.configDir, err)
	}
	rtt := time.Since(sent)
	skew := p.ServerTime.Sub(sent.Add(rtt / 2)).Seconds()
	fmt.Fprintf(m.Stdout, "provisioned %s: acquirer reachable, clock skew %.1f s\n", b.Terminal, math.Abs(skew))
	return nil
}

// moveJournal moves the journal in o.stateDir (if there is one) from the terminal's
// current key to secret before the key file is replaced: records not yet at the acquirer
// are uploaded under the current key first (the acquirer accepts it for a rotation's
// grace period), then Journal.Rekey. It returns with the journal's lock held; release
// lets it go. A journal of another terminal, or one a running agent holds, is refused.
func (m *Main) moveJournal(ctx context.Context, o provisionOptions, b wire.Bundle, secret []byte, keyPath string) (release func(), err error) {
	path := filepath.Join(o.stateDir, "journal.db")
	if _, err := os.Stat(path); err != nil {
		return func() {}, nil
	}
	lock, err := flock.Acquire(path + ".lock")
	if errors.Is(err, flock.ErrLocked) {
		return nil, withHint(fmt.Errorf("journal %s: %w", path, err), "the agent is running: stop it ('systemctl stop posagent'), provision, then start it")
	} else if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			lock.Release()
		}
	}()
	old, err := offline.LoadKey(keyPath, false)
	if err != nil {
		return nil, withHint(fmt.Errorf("provision: the current key: %w", err), "the journal can move to the new secret only with the key it was written under")
	}
	next, err := offline.NewKey(secret)
	if err != nil {
		return nil, err
	}
	j, err := offline.Open(path, offline.Options{Key: old})
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	defer j.Close()
	if j.Terminal() != "" && j.Terminal() != b.Terminal {
		return nil, withHint(fmt.Errorf("provision: the journal %s belongs to terminal %s, the bundle is for %s", path, j.Terminal(), b.Terminal),
			"upload its records first ('posagent sync --once'), then move the journal away to give this terminal another identity")
	}
	err = j.Rekey(ctx, next)
	if errors.Is(err, offline.ErrUnsent) {
		// Upload what waits, under the key it was written with, and try again.
		client, cerr := bundleClient(b, old, o.configDir)
		if cerr != nil {
			return nil, cerr
		}
		uctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		rep, serr := (&uplink.Syncer{Journal: j, Client: client, Key: old}).Once(uctx)
		cancel()
		fmt.Fprintf(m.Stdout, "uploaded %d records under the current key before the change\n", rep.Accepted+rep.Duplicate)
		if serr != nil {
			return nil, withHint(fmt.Errorf("provision: upload the records journaled under the current key: %w", serr),
				"the acquirer accepts the replaced secret only during the rotation's grace ('acquirerd terminals ls' shows it): upload them before it ends")
		}
		err = j.Rekey(ctx, next)
	}
	var unsent *offline.UnsentError
	if errors.As(err, &unsent) {
		return nil, withHint(fmt.Errorf("provision: %d records in %s are not at the acquirer yet, so the journal keeps the current key", unsent.Records, path),
			"start the agent with the current key until 'posagent queue ls' shows nothing waiting, stop it, and provision again")
	}
	if err != nil {
		return nil, fmt.Errorf("provision: %w", err)
	}
	ok = true
	return func() { lock.Release() }, nil
}

// bundleClient is a client of the bundle's acquirer signing with key, trusting the
// bundle's CA (written to DIR/acquirer-ca.pem) when it has one.
func bundleClient(b wire.Bundle, key *offline.Key, configDir string) (*uplink.Client, error) {
	client, err := uplink.New(b.AcquirerURL, b.Terminal, key)
	if err != nil {
		return nil, err
	}
	if b.CAPEM != "" {
		if err := client.SetTLS(uplink.TLSOptions{CAFile: filepath.Join(configDir, "acquirer-ca.pem")}); err != nil {
			return nil, err
		}
	}
	return client, nil
}

// provisionEnv returns the env file at path with set's variables set (other lines kept)
// and a new POSAGENT_API_TOKEN when it has none.
func provisionEnv(path string, set map[string]string) ([]byte, error) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("provision: %w", err)
	}
	var out bytes.Buffer
	hasToken := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		name, _, _ := strings.Cut(strings.TrimSpace(line), "=")
		if _, ok := set[name]; ok {
			continue
		}
		if name == "POSAGENT_API_TOKEN" {
			hasToken = true
		}
		out.WriteString(line + "\n")
	}
	for _, name := range []string{"POSAGENT_TERMINAL", "POSAGENT_ACQUIRER", "POSAGENT_KEY_FILE", "POSAGENT_STATE_DIR"} {
		fmt.Fprintf(&out, "%s=%s\n", name, set[name])
	}
	if !hasToken {
		tok := make([]byte, 16)
		rand.Read(tok)
		fmt.Fprintf(&out, "POSAGENT_API_TOKEN=%s\n", hex.EncodeToString(tok))
	}
	return out.Bytes(), nil
}

// writeAtomic writes path through a temporary file in its directory, synced, given mode
// (and uid, gid when uid >= 0), and renamed over path.
func writeAtomic(path string, data []byte, mode fs.FileMode, uid, gid int) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	err = f.Chmod(mode)
	if err == nil && uid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
