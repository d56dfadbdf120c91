package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/posagent/posagent/device"
	"github.com/posagent/posagent/drivers/escpos"
	"github.com/posagent/posagent/drivers/hid"
	"github.com/posagent/posagent/drivers/ports"
	"github.com/posagent/posagent/drivers/usblp"
	"github.com/posagent/posagent/offline"
	"github.com/posagent/posagent/sync/uplink"
)

func init() { commands = append(commands, (*Main).doctorCommand) }

// Verdicts of a doctor check.
const (
	verdictOK   = "ok"
	verdictWarn = "warn"
	verdictFail = "fail"
	verdictSkip = "skip"
)

// check is one line of posagent doctor's report.
type check struct {
	Name    string `json:"name"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
	Hint    string `json:"hint,omitempty"`
}

// doctorReport is what posagent doctor --json prints.
type doctorReport struct {
	Healthy bool    `json:"healthy"`
	Checks  []check `json:"checks"`
}

// doctor holds the knobs tests turn.
type doctor struct {
	now          func() time.Time
	probeTimeout time.Duration // how long a device gets to answer
	maxSkew      time.Duration // clock skew beyond this is a failure
	minFree      uint64        // bytes free on the state dir's file system
	certWarn     time.Duration // a certificate expiring within this is a warning
}

func defaultDoctor() doctor {
	return doctor{now: time.Now, probeTimeout: 2 * time.Second, maxSkew: 30 * time.Second, minFree: 64 << 20, certWarn: 14 * 24 * time.Hour}
}

func (m *Main) doctorCommand() *cobra.Command {
	var (
		configPath string
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "doctor [--config FILE] [--json]",
		Short: "Check the terminal: config, key, devices, journal, acquirer, clock, disk, certificate",
		Long: `doctor checks everything the agent needs and prints one line per check with its
verdict (ok, warn, fail, skip) and, for each problem, what to do about it:

  config      the config file parses and is valid
  key         the provisioned key file is present, readable only by its owner, well formed
  printer     present and answering DLE EOT: paper out or near its end, cover open,
              offline, no answer, unplugged
  display     present (the port opens)
  scanner     present (the port opens)
  journal     integrity (hash chain and MACs), backlog not yet at the acquirer, age of the
              oldest sale stored offline, suspended offline sales
  acquirer    reachable, and it accepts the terminal's signature
  clock       skew against the acquirer's clock
  disk        free space where the journal lives
  certificate expiry of the local HTTPS certificate (api.tls_cert)

Beside a running agent (it holds the journal's lock) the printer, display and scanner
are asked of the agent (GET /v1/status) instead of opened: it holds their ports.
Exit status: 0 when nothing is wrong (warnings allowed), 1 otherwise.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usageError{errors.New("doctor needs --config FILE (or POSAGENT_CONFIG)")}
			}
			rep := defaultDoctor().run(cmd.Context(), configPath, envWithFile(filepath.Join(filepath.Dir(configPath), "env")))
			if asJSON {
				if err := m.writeJSON(rep); err != nil {
					return err
				}
			} else {
				for _, c := range rep.Checks {
					line := fmt.Sprintf("%-4s  %-11s %s", c.Verdict, c.Name, c.Detail)
					if c.Hint != "" {
						line += " (hint: " + c.Hint + ")"
					}
					fmt.Fprintln(m.Stdout, line)
				}
			}
			if !rep.Healthy {
				return silentFailure{}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", os.Getenv("POSAGENT_CONFIG"), "the agent's YAML config (env POSAGENT_CONFIG)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// silentFailure is exit status 1 with nothing more on stderr: the report said it all.
type silentFailure struct{}

func (silentFailure) Error() string { return "doctor found problems (see above)" }

// run performs every check; a check that cannot run for want of an earlier one is skipped.
func (d doctor) run(ctx context.Context, configPath string, getenv func(string) string) doctorReport {
	var rep doctorReport
	add := func(c check) { rep.Checks = append(rep.Checks, c) }

	cfg, cfgErr := d.loadConfig(configPath, getenv)
	if cfgErr != nil {
		add(check{"config", verdictFail, oneLine(cfgErr.Error()), configHint(cfgErr)})
	} else {
		add(check{"config", verdictOK, configPath, ""})
	}
	if cfg == nil {
		for _, n := range []string{"key", "printer", "display", "scanner", "journal", "acquirer", "clock", "disk", "certificate"} {
			add(check{n, verdictSkip, "no config", ""})
		}
		return rep.finish()
	}

	key, c := d.checkKey(cfg.KeyFile)
	add(c)
	if agentRunning(*cfg) {
		// The running agent owns the ports: ask it what it sees.
		states, err := d.agentDevices(ctx, *cfg)
		for _, n := range []string{"printer", "display", "scanner"} {
			if err != nil {
				add(check{n, verdictFail, "the agent runs but its API does not answer: " + oneLine(err.Error()), "check api.listen and api.token, or stop the agent (systemctl stop posagent) and run doctor again"})
				continue
			}
			add(deviceCheckFromAgent(n, states))
		}
	} else {
		add(d.checkPrinter(ctx, cfg.Devices.Printer))
		add(d.checkPort(ctx, "display", cfg.Devices.Display.Port, cfg.Devices.Display.Baud))
		add(d.checkPort(ctx, "scanner", cfg.Devices.Scanner.Port, cfg.Devices.Scanner.Baud))
	}
	add(d.checkJournal(ctx, cfg, key))
	acq, clock := d.checkAcquirer(ctx, cfg, key)
	add(acq)
	add(clock)
	add(d.checkDisk(cfg.StateDir))
	add(d.checkCert(cfg.API.TLSCert))
	return rep.finish()
}

func (r doctorReport) finish() doctorReport {
	r.Healthy = true
	for _, c := range r.Checks {
		if c.Verdict == verdictFail {
			r.Healthy = false
		}
	}
	return r
}

// loadConfig returns the config, and the validation error; the config is nil only when the
// file cannot be read or parsed at all.
func (d doctor) loadConfig(path string, getenv func(string) string) (*device.Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open config: %w", err)
	}
	defer f.Close()
	cfg, err := device.ParseConfig(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	cfg.ApplyEnv(getenv)
	if err := cfg.Validate(); err != nil {
		return &cfg, fmt.Errorf("%s: %w", path, err)
	}
	return &cfg, nil
}

func configHint(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "give the config with --config FILE or POSAGENT_CONFIG; 'posagent provision' writes one"
	}
	if errors.Is(err, fs.ErrPermission) {
		return "run doctor as the service user (sudo -u posagent) or as root"
	}
	return "fix the field named in the message; configs/demo.yaml documents every field"
}

func (d doctor) checkKey(path string) (*offline.Key, check) {
	c := check{Name: "key"}
	if path == "" {
		c.Verdict, c.Detail, c.Hint = verdictFail, "no key_file configured", "set key_file or POSAGENT_KEY_FILE; 'posagent provision' installs the key"
		return nil, c
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Verdict, c.Detail, c.Hint = verdictFail, path+" is missing", "provision the terminal ('posagent provision') or set key_file to the provisioned key"
		return nil, c
	case errors.Is(err, fs.ErrPermission):
		c.Verdict, c.Detail, c.Hint = verdictFail, path+": permission denied", "run doctor as the service user (sudo -u posagent) or as root"
		return nil, c
	case err != nil:
		c.Verdict, c.Detail, c.Hint = verdictFail, err.Error(), "check the key file's path"
		return nil, c
	}
	if perm := st.Mode().Perm(); st.Mode().IsRegular() && perm&0o077 != 0 {
		c.Verdict, c.Detail, c.Hint = verdictFail, fmt.Sprintf("%s has mode %04o: group or others can read it", path, perm),
			fmt.Sprintf("run chmod 600 %s (and chown it to the service user)", path)
		return nil, c
	}
	if dir := filepath.Dir(path); dir != "" {
		if dst, err := os.Stat(dir); err == nil && dst.Mode().Perm()&0o002 != 0 && !stickyOwned(dst, st) {
			c.Verdict, c.Detail, c.Hint = verdictFail, fmt.Sprintf("%s is writable by anyone: the key can be replaced", dir),
				fmt.Sprintf("run chmod o-w %s", dir)
			return nil, c
		}
	}
	key, err := offline.LoadKey(path, false)
	if err != nil {
		c.Verdict, c.Detail, c.Hint = verdictFail, oneLine(err.Error()), "the file is not a key: provision the terminal again ('posagent provision --force')"
		return nil, c
	}
	c.Verdict, c.Detail = verdictOK, fmt.Sprintf("%s, mode %04o", path, st.Mode().Perm())
	return key, c
}

// openPort opens a configured port for a probe (serial, tcp:, usblp: or, for the scanner,
// hid:), failing at once when it is absent.
func (d doctor) openPort(ctx context.Context, port string, baud int) (ports.Port, error) {
	opt := ports.Options{Baud: baud, Logger: slog.New(slog.DiscardHandler)}
	if ports.KindOf(port) == ports.HID {
		return ports.OpenScanner(ctx, port, opt)
	}
	return ports.Open(ctx, port, opt)
}

func portHint(name string, err error) string {
	if errors.Is(err, hid.ErrPermission) {
		return hid.PermissionHint
	}
	if errors.Is(err, usblp.ErrPermission) {
		return "add the service user to the lp group (usermod -aG lp posagent), or run doctor as it"
	}
	if errors.Is(err, fs.ErrPermission) {
		return "add the service user to the dialout group, or run doctor as it"
	}
	if strings.Contains(err.Error(), "busy") || strings.Contains(err.Error(), "lock") {
		return "another program holds the port: stop the agent (systemctl stop posagent) and run doctor again"
	}
	return fmt.Sprintf("the %s is unplugged or on another port: check its cable and power, then 'posagent ports' and devices.%s.port", name, name)
}

func (d doctor) checkPort(ctx context.Context, name, port string, baud int) check {
	if port == "" {
		return check{name, verdictSkip, "not configured", ""}
	}
	ctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
	defer cancel()
	p, err := d.openPort(ctx, port, baud)
	if err != nil {
		return check{name, verdictFail, fmt.Sprintf("%s: %s (unplugged?)", port, oneLine(err.Error())), portHint(name, err)}
	}
	p.Close()
	return check{name, verdictOK, port + " present", ""}
}

func (d doctor) checkPrinter(ctx context.Context, cfg device.PrinterConfig) check {
	const name = "printer"
	if cfg.Port == "" {
		return check{name, verdictSkip, "not configured", ""}
	}
	prof, err := escpos.LoadProfile(cfg.Profile, cfg.ProfileDir)
	if err != nil {
		return check{name, verdictFail, oneLine(err.Error()), "set devices.printer.profile to one of " + strings.Join(escpos.ProfileNames(cfg.ProfileDir), ", ")}
	}
	ctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
	defer cancel()
	p, err := d.openPort(ctx, cfg.Port, cfg.Baud)
	if err != nil {
		return check{name, verdictFail, fmt.Sprintf("%s: %s (unplugged?)", cfg.Port, oneLine(err.Error())), portHint(name, err)}
	}
	defer p.Close()
	rate, chunk := ports.PrinterPacing(cfg.Port, cfg.Baud)
	st, err := escpos.New(p, prof, escpos.Options{Baud: rate, ChunkSize: chunk}).Status(ctx)
	switch {
	case errors.Is(err, escpos.ErrNoAnswer) || errors.Is(err, context.DeadlineExceeded):
		return check{name, verdictFail, cfg.Port + ": no answer to DLE EOT (offline, off, or not a printer)",
			"check the printer's power and devices.printer.baud; a printer without status support cannot be used"}
	case err != nil:
		return check{name, verdictFail, cfg.Port + ": " + oneLine(err.Error()), "check devices.printer.baud and that the port is the printer's"}
	}
	return printerStatusCheck(fmt.Sprintf("%s: %s (profile %s)", cfg.Port, st, prof.Name), st)
}

// printerStatusCheck is the printer's verdict and hint from its DLE EOT status, read by
// doctor itself or reported by the running agent.
func printerStatusCheck(detail string, st escpos.Status) check {
	const name = "printer"
	switch {
	case st.PaperEnd || st.PaperStop:
		return check{name, verdictFail, detail, "paper out: load a paper roll and close the cover"}
	case st.CoverOpen:
		return check{name, verdictFail, detail, "cover open: close the printer's cover"}
	case st.Error:
		return check{name, verdictFail, detail, "the printer reports an error (cutter jam, overheated head): clear it, switch it off and on"}
	case st.Offline:
		return check{name, verdictFail, detail, "the printer is offline: check its panel lights, switch it off and on"}
	case st.PaperNearEnd:
		return check{name, verdictWarn, detail, "paper near its end: have a new roll ready"}
	}
	return check{name, verdictOK, detail, ""}
}

func (d doctor) checkJournal(ctx context.Context, cfg *device.Config, key *offline.Key) check {
	const name = "journal"
	if _, err := os.Stat(cfg.Journal); errors.Is(err, fs.ErrNotExist) {
		return check{name, verdictOK, cfg.Journal + " not created yet (the agent creates it)", ""}
	}
	j, err := offline.Open(cfg.Journal, offline.Options{ReadOnly: true, Key: key, Terminal: cfg.Terminal, Policy: cfg.Offline})
	switch {
	case errors.Is(err, offline.ErrCorrupt):
		return check{name, verdictFail, oneLine(err.Error()), "keep the file for analysis; start the agent (it moves it aside) and call support"}
	case errors.Is(err, fs.ErrPermission):
		return check{name, verdictFail, oneLine(err.Error()), "run doctor as the service user (sudo -u posagent) or as root"}
	case err != nil:
		return check{name, verdictFail, oneLine(err.Error()), "check journal/state_dir in the config, and that the file is posagent's journal"}
	}
	defer j.Close()
	rep, err := j.Verify(ctx)
	if err != nil {
		return check{name, verdictFail, oneLine(err.Error()), "check that key_file is this terminal's key; else call support"}
	}
	if rep.Broken != nil {
		return check{name, verdictFail, fmt.Sprintf("hash chain broken: %+v", *rep.Broken), "the journal was altered: keep it, do not delete it, call support"}
	}
	st, err := j.Stats(ctx)
	if err != nil {
		return check{name, verdictFail, oneLine(err.Error()), "call support"}
	}
	detail := fmt.Sprintf("%d records verified, %d not yet at the acquirer, %d stored offline", rep.Records, st.Unacked, st.Outstanding.Count)
	if !st.Outstanding.Oldest.IsZero() {
		detail += fmt.Sprintf(", oldest stored %s ago", d.now().Sub(st.Outstanding.Oldest).Round(time.Second))
	}
	if key == nil {
		detail += " (MACs not checked: no key)"
	}
	switch {
	case st.Hold != "":
		return check{name, verdictFail, detail + "; offline sales suspended: " + st.Hold, "check the moved-aside journal, then 'posagent queue release'"}
	case st.Overdue > 0:
		return check{name, verdictFail, fmt.Sprintf("%s; %d older than the offline policy allows", detail, st.Overdue),
			"get the terminal online so the sales sync (see the acquirer check)"}
	}
	return check{name, verdictOK, detail, ""}
}

func (d doctor) checkAcquirer(ctx context.Context, cfg *device.Config, key *offline.Key) (acq, clock check) {
	acq, clock = check{Name: "acquirer"}, check{Name: "clock"}
	if key == nil || cfg.Acquirer.URL == "" {
		acq.Verdict, acq.Detail = verdictSkip, "no key or acquirer.url"
		clock.Verdict, clock.Detail = verdictSkip, "acquirer not asked"
		return
	}
	cl, err := uplink.New(cfg.Acquirer.URL, cfg.Terminal, key)
	if err != nil {
		acq.Verdict, acq.Detail, acq.Hint = verdictFail, oneLine(err.Error()), "fix acquirer.url (POSAGENT_ACQUIRER)"
		clock.Verdict, clock.Detail = verdictSkip, "acquirer not asked"
		return
	}
	cl.HTTP.Timeout = cfg.Acquirer.RequestTimeout.D()
	sent := d.now()
	p, err := cl.Ping(ctx)
	got := d.now()
	if err != nil {
		acq.Verdict, acq.Detail = verdictFail, cfg.Acquirer.URL+": "+oneLine(err.Error())
		s := strings.ToLower(err.Error())
		switch {
		case strings.Contains(s, "401") || strings.Contains(s, "signature") || strings.Contains(s, "unauthorized"):
			acq.Hint = "the acquirer refuses this terminal's signature: check terminal and key_file, or provision again"
		default:
			acq.Hint = "check the network, acquirer.url and the firewall; sales are stored offline meanwhile"
		}
		clock.Verdict, clock.Detail = verdictSkip, "acquirer not reachable"
		return
	}
	acq.Verdict, acq.Detail = verdictOK, fmt.Sprintf("%s answers as %s, signature accepted", cfg.Acquirer.URL, p.Terminal)
	mid := sent.Add(got.Sub(sent) / 2)
	skew := p.ServerTime.Sub(mid)
	clock.Detail = fmt.Sprintf("skew %.1f s against the acquirer", skew.Seconds())
	clock.Verdict = verdictOK
	if skew > d.maxSkew || skew < -d.maxSkew {
		clock.Verdict, clock.Hint = verdictFail, "set the clock: enable NTP (timedatectl set-ntp true)"
	}
	return
}

func (d doctor) checkDisk(dir string) check {
	const name = "disk"
	for dir != "" {
		if _, err := os.Stat(dir); err == nil {
			break
		}
		dir = filepath.Dir(dir)
		if dir == "/" || dir == "." {
			break
		}
	}
	var fsst syscall.Statfs_t
	if err := syscall.Statfs(dir, &fsst); err != nil {
		return check{name, verdictFail, dir + ": " + err.Error(), "check state_dir"}
	}
	free := fsst.Bavail * uint64(fsst.Bsize)
	detail := fmt.Sprintf("%d MiB free on %s", free>>20, dir)
	if free < d.minFree {
		return check{name, verdictFail, detail, "free space: remove old logs (journalctl --vacuum-size=50M) and update bundles"}
	}
	return check{name, verdictOK, detail, ""}
}

func (d doctor) checkCert(path string) check {
	const name = "certificate"
	if path == "" {
		return check{name, verdictSkip, "no api.tls_cert (plain HTTP on loopback)", ""}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return check{name, verdictFail, oneLine(err.Error()), "install the certificate or fix api.tls_cert"}
	}
	blk, _ := pem.Decode(data)
	if blk == nil {
		return check{name, verdictFail, path + ": no PEM certificate", "api.tls_cert must be a PEM certificate"}
	}
	crt, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return check{name, verdictFail, path + ": " + err.Error(), "api.tls_cert must be a PEM certificate"}
	}
	left := crt.NotAfter.Sub(d.now())
	detail := fmt.Sprintf("%s expires %s", path, crt.NotAfter.UTC().Format(time.DateOnly))
	switch {
	case left <= 0:
		return check{name, verdictFail, detail + " (expired)", "renew the certificate (mkcert or your CA) and restart the agent"}
	case left < d.certWarn:
		return check{name, verdictWarn, fmt.Sprintf("%s (in %d days)", detail, int(left.Hours()/24)), "renew the certificate soon"}
	}
	return check{name, verdictOK, detail, ""}
}

// stickyOwned reports whether a key file in a world-writable directory is still safe from
// being replaced: the directory is sticky (like /tmp), so only the file's owner can
// rename or remove it, and that owner is the user running doctor or root.
func stickyOwned(dir, file fs.FileInfo) bool {
	if dir.Mode()&fs.ModeSticky == 0 {
		return false
	}
	st, ok := file.Sys().(*syscall.Stat_t)
	return ok && (st.Uid == 0 || int(st.Uid) == os.Geteuid())
}
