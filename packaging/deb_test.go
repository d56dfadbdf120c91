//go:build linux

package packaging

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/posagent/posagent/device"
)

// The packages under test: those of POSAGENT_DEB_DIR when it is set (CI runs `make deb` and
// points it at dist/), otherwise the amd64 (host) packages built here once, with the pinned nfpm
// from the Makefile, the same configs and the same version script as `make deb`.

type pkgSpec struct {
	name     string
	arches   []string          // Debian architectures make deb builds
	files    map[string]string // path in the package -> mode and owner as `dpkg-deb -c` prints them
	conffile []string
}

var specs = []pkgSpec{
	{
		name:   "posagent",
		arches: []string{"amd64", "arm64", "armhf"},
		files: map[string]string{
			"./usr/bin/posagent":                        "-rwxr-xr-x root/root",
			"./usr/lib/systemd/system/posagent.service": "-rw-r--r-- root/root",
			"./usr/lib/sysusers.d/posagent.conf":        "-rw-r--r-- root/root",
			"./etc/posagent/posagent.yaml":              "-rw-r--r-- root/root",
			"./etc/posagent/env":                        "-rw------- root/root",
			"./etc/posagent/update-keys/":               "drwxr-xr-x root/root",
		},
		conffile: []string{"/etc/posagent/env", "/etc/posagent/posagent.yaml"},
	},
	{
		name:   "acquirerd",
		arches: []string{"amd64", "arm64"},
		files: map[string]string{
			"./usr/bin/acquirerd":                        "-rwxr-xr-x root/root",
			"./usr/lib/systemd/system/acquirerd.service": "-rw-r--r-- root/root",
			"./usr/lib/sysusers.d/acquirerd.conf":        "-rw-r--r-- root/root",
			"./etc/acquirerd/env":                        "-rw------- root/root",
		},
		conffile: []string{"/etc/acquirerd/env"},
	},
}

var elfMachine = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}

func run(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func needTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the package tests build and install Debian packages")
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not found: the package tests need Debian's dpkg (apt-get install dpkg)")
	}
}

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  string
)

// packages returns the directory holding the .deb files to test and whether it should hold
// every architecture (POSAGENT_DEB_DIR, from make deb) or only the host's.
func packages(t *testing.T) (dir string, all bool) {
	t.Helper()
	if d := os.Getenv("POSAGENT_DEB_DIR"); d != "" {
		abs, err := filepath.Abs(filepath.Join("..", d))
		if filepath.IsAbs(d) {
			abs, err = d, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return abs, true
	}
	buildOnce.Do(func() { builtDir, buildErr = buildHost() })
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return builtDir, false
}

// buildHost builds the host's packages as make deb does, in a temporary directory that
// outlives the test binary's tests (removed by TestMain).
func buildHost() (string, string) {
	root, _ := filepath.Abs("..")
	tmp, err := os.MkdirTemp("", "posagent-deb-test-")
	if err != nil {
		return "", err.Error()
	}
	cleanups = append(cleanups, func() { os.RemoveAll(tmp) })
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		return "", err.Error()
	}
	nfpm := regexp.MustCompile(`(?m)^NFPM\s*\?=\s*(\S+)`).FindSubmatch(mk)
	if nfpm == nil {
		return "", "Makefile: no NFPM ?= line"
	}
	arch := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf"}[runtime.GOARCH]
	steps := [][]string{
		{"go", "build", "-trimpath", "-ldflags", "-s -w", "-o", tmp + "/bin/", "./cmd/posagent", "./cmd/acquirerd"},
		{"go", "install", string(nfpm[1])},
	}
	for _, s := range steps {
		cmd := exec.Command(s[0], s[1:]...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOBIN="+tmp+"/bin", "CGO_ENABLED=1", "GOFLAGS=-buildvcs=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", strings.Join(s, " ") + ": " + err.Error() + "\n" + string(out)
		}
	}
	version, err := exec.Command(filepath.Join(root, "packaging/version.sh")).Output()
	if err != nil {
		return "", "packaging/version.sh: " + err.Error()
	}
	for _, name := range []string{"posagent", "acquirerd"} {
		conf, err := os.ReadFile(filepath.Join(root, "packaging", name+".nfpm.yaml"))
		if err != nil {
			return "", err.Error()
		}
		confPath := filepath.Join(tmp, name+".nfpm.yaml")
		if err := os.WriteFile(confPath, bytes.ReplaceAll(conf, []byte("${BINDIR}"), []byte(tmp+"/bin")), 0o644); err != nil {
			return "", err.Error()
		}
		cmd := exec.Command(tmp+"/bin/nfpm", "package", "--config", confPath, "--packager", "deb", "--target", tmp+"/")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "ARCH="+arch, "VERSION="+strings.TrimSpace(string(version)))
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "nfpm package " + name + ": " + err.Error() + "\n" + string(out)
		}
	}
	return tmp, ""
}

var cleanups []func()

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range cleanups {
		c()
	}
	os.Exit(code)
}

func find(t *testing.T, dir, name, arch string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, name+"_*_"+arch+".deb"))
	if len(m) != 1 {
		t.Fatalf("want one %s package for %s in %s, found %v", name, arch, dir, m)
	}
	return m[0]
}

func hostArch(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(run(t, nil, "dpkg", "--print-architecture"))
}

// TestDeb_Contents checks every package from the built file: control fields, the files with
// their modes and owners, the conffiles, the maintainer scripts, and that the binary is built
// for the package's architecture.
func TestDeb_Contents(t *testing.T) {
	needTools(t)
	dir, all := packages(t)
	for _, s := range specs {
		arches := s.arches
		if !all {
			arches = []string{hostArch(t)}
		}
		for _, arch := range arches {
			t.Run(s.name+"_"+arch, func(t *testing.T) {
				deb := find(t, dir, s.name, arch)
				field := func(f string) string { return strings.TrimSpace(run(t, nil, "dpkg-deb", "-f", deb, f)) }
				if got := field("Package"); got != s.name {
					t.Errorf("Package = %q, want %q", got, s.name)
				}
				if got := field("Architecture"); got != arch {
					t.Errorf("Architecture = %q, want %q", got, arch)
				}
				if v := field("Version"); !regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`).MatchString(v) {
					t.Errorf("Version = %q: not a Debian upstream version starting with a digit", v)
				}
				if got := field("Depends"); !strings.Contains(got, "systemd") {
					t.Errorf("Depends = %q, want systemd (sysusers, the unit)", got)
				}

				// dpkg-deb -c: "-rwxr-xr-x root/root 15446736 2026-12-01 12:27 ./usr/bin/posagent"
				seen := map[string]string{}
				sc := bufio.NewScanner(strings.NewReader(run(t, nil, "dpkg-deb", "-c", deb)))
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) < 6 {
						continue
					}
					seen[f[5]] = f[0] + " " + f[1]
					if f[1] != "root/root" {
						t.Errorf("%s owned by %s, want root/root", f[5], f[1])
					}
					if strings.HasPrefix(f[5], "./var/") {
						t.Errorf("%s: the package must not ship the data directory (postinst makes it)", f[5])
					}
				}
				for path, want := range s.files {
					if got := seen[path]; got != want {
						t.Errorf("%s: %q, want %q", path, got, want)
					}
				}

				ctrl := t.TempDir()
				run(t, nil, "dpkg-deb", "-e", deb, ctrl)
				conf, _ := os.ReadFile(filepath.Join(ctrl, "conffiles"))
				got := strings.Fields(string(conf))
				if strings.Join(got, " ") != strings.Join(s.conffile, " ") {
					t.Errorf("conffiles = %v, want %v", got, s.conffile)
				}
				for _, script := range []string{"postinst", "prerm", "postrm"} {
					fi, err := os.Stat(filepath.Join(ctrl, script))
					if err != nil || fi.Mode().Perm() != 0o755 {
						t.Errorf("maintainer script %s: %v, mode %v; want 0755", script, err, fi)
					}
				}

				// The binary is for the package's architecture (armhf: 32-bit ARM).
				root := t.TempDir()
				run(t, nil, "dpkg-deb", "-x", deb, root)
				f, err := elf.Open(filepath.Join(root, "usr/bin", s.name))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Machine != elfMachine[arch] {
					t.Errorf("usr/bin/%s is %v, want %v", s.name, f.Machine, elfMachine[arch])
				}
			})
		}
	}
}

// TestDeb_Config loads the installed example config as the agent will, with the two values a
// technician provisions (terminal, API token) from the environment: it must be valid as shipped.
func TestDeb_Config(t *testing.T) {
	env := map[string]string{"POSAGENT_TERMINAL": "T-1", "POSAGENT_API_TOKEN": "0123456789abcdef0123"}
	cfg, err := device.LoadConfig("../configs/posagent.yaml", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StateDir != "/var/lib/posagent" || cfg.KeyFile != "/etc/posagent/key" || cfg.CreateKey {
		t.Errorf("state_dir %q key_file %q create_key %v; want /var/lib/posagent, /etc/posagent/key, false", cfg.StateDir, cfg.KeyFile, cfg.CreateKey)
	}
	if cfg.Devices.Scanner.Port != "" || cfg.Devices.Printer.Port != "" || cfg.Devices.Display.Port != "" {
		t.Errorf("devices configured in the shipped config: %+v; want placeholders (commented)", cfg.Devices)
	}
}

// TestDeb_Install installs the host's packages into a scratch root with the real dpkg
// (--root, scripts run chrootless with DPKG_ROOT set, which the scripts honour) and walks
// through install, upgrade (the same package again), remove and purge: the user and its
// groups, the data directory's mode and owner, the journal left alone on upgrade, remove and
// purge, a changed conffile kept, and POSAGENT_PURGE_DATA=yes deleting the data on purge.
// Then systemd-analyze verify checks each unit (a copy whose ExecStart is the extracted binary).
func TestDeb_Install(t *testing.T) {
	needTools(t)
	if os.Getuid() != 0 {
		t.Skip("not root: the scratch-root install creates files owned by the service users (CI runs as root)")
	}
	dir, _ := packages(t)
	arch := hostArch(t)
	hostPasswd, _ := os.ReadFile("/etc/passwd")

	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The root's account files start as the host's (dialout, lp exist there), as on a terminal.
	for _, f := range []string{"passwd", "group", "shadow", "gshadow"} {
		if b, err := os.ReadFile("/etc/" + f); err == nil {
			if err := os.WriteFile(filepath.Join(root, "etc", f), b, 0o640); err != nil {
				t.Fatal(err)
			}
		}
	}
	dpkg := func(purgeData bool, args ...string) string {
		t.Helper()
		env := []string{"POSAGENT_PURGE_DATA="}
		if purgeData {
			env = []string{"POSAGENT_PURGE_DATA=yes"}
		}
		a := append([]string{"--root=" + root, "--force-not-root", "--force-script-chrootless", "--force-depends"}, args...)
		cmd := exec.Command("dpkg", a...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	at := func(p string) string { return filepath.Join(root, p) }

	for _, s := range specs {
		t.Run(s.name, func(t *testing.T) {
			deb := find(t, dir, s.name, arch)
			data := at("var/lib/" + s.name)
			conf := at(s.conffile[0])

			dpkg(false, "-i", deb)
			uid, gid, groups := account(t, root, s.name)
			if uid == "" {
				t.Fatalf("no user %s in the root's /etc/passwd", s.name)
			}
			if s.name == "posagent" {
				for _, g := range []string{"dialout", "lp", "input", "video"} {
					if !groups[g] {
						t.Errorf("user posagent not in group %s", g)
					}
				}
			}
			checkDir(t, data, uid, gid)

			// The journal and a technician's edit of a conffile.
			journal := filepath.Join(data, "journal.db")
			if err := os.WriteFile(journal, []byte("sales"), 0o600); err != nil {
				t.Fatal(err)
			}
			appendFile(t, conf, "\n# edited on the terminal\n")

			if s.name == "posagent" {
				checkLayout(t, root, "")
				// An update applied over the air (posagent update apply) made 9.9.9 current.
				ota := at("usr/lib/posagent/versions/9.9.9")
				if err := os.MkdirAll(ota, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(ota, "posagent"), []byte("#!/bin/sh\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Remove(at("usr/lib/posagent/current")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("versions/9.9.9", at("usr/lib/posagent/current")); err != nil {
					t.Fatal(err)
				}
			}

			dpkg(false, "-i", deb) // an upgrade: postinst configure with the old version
			if s.name == "posagent" {
				checkLayout(t, root, "versions/9.9.9") // the package's binary is current again
			}
			dpkg(false, "-i", deb) // and again: idempotent
			if s.name == "posagent" {
				checkLayout(t, root, "versions/9.9.9")
			}
			checkDir(t, data, uid, gid)
			if b, err := os.ReadFile(journal); err != nil || string(b) != "sales" {
				t.Errorf("journal after upgrade: %q, %v", b, err)
			}
			if b, _ := os.ReadFile(conf); !bytes.Contains(b, []byte("edited on the terminal")) {
				t.Errorf("%s: the edit was lost on upgrade", s.conffile[0])
			}

			dpkg(false, "-r", s.name)
			if _, err := os.Stat(at("usr/bin/" + s.name)); err == nil {
				t.Errorf("remove left /usr/bin/%s", s.name)
			}
			if b, err := os.ReadFile(journal); err != nil || string(b) != "sales" {
				t.Errorf("journal after remove: %q, %v", b, err)
			}
			if _, err := os.Stat(conf); err != nil {
				t.Errorf("remove deleted the conffile %s: %v", s.conffile[0], err)
			}
			if _, err := os.Lstat(at("usr/lib/posagent")); s.name == "posagent" && err == nil {
				t.Errorf("remove left the update layout /usr/lib/posagent")
			}

			out := dpkg(false, "-P", s.name)
			if b, err := os.ReadFile(journal); err != nil || string(b) != "sales" {
				t.Errorf("journal after purge without POSAGENT_PURGE_DATA: %q, %v", b, err)
			}
			if !strings.Contains(out, "POSAGENT_PURGE_DATA=yes") {
				t.Errorf("purge does not say how to delete the data:\n%s", out)
			}
			if _, err := os.Stat(conf); err == nil {
				t.Errorf("purge left the conffile %s", s.conffile[0])
			}

			dpkg(false, "-i", deb) // back again over the kept data
			checkDir(t, data, uid, gid)
			dpkg(true, "-P", s.name)
			if _, err := os.Stat(data); err == nil {
				t.Errorf("purge with POSAGENT_PURGE_DATA=yes left %s", data)
			}
		})
	}
	if now, _ := os.ReadFile("/etc/passwd"); !bytes.Equal(now, hostPasswd) {
		t.Errorf("the host's /etc/passwd changed: the maintainer scripts escaped DPKG_ROOT")
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		if _, err := exec.LookPath("systemd-analyze"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("systemd-analyze not found (apt-get install systemd)")
			}
			t.Skip("systemd-analyze not found: apt-get install systemd")
		}
		for _, s := range specs {
			ext := t.TempDir()
			run(t, nil, "dpkg-deb", "-x", find(t, dir, s.name, arch), ext)
			unit, err := os.ReadFile(filepath.Join(ext, "usr/lib/systemd/system", s.name+".service"))
			if err != nil {
				t.Fatal(err)
			}
			// verify wants ExecStart's binary to exist and be executable: the extracted one
			// (posagent's unit runs the update layout's current version, made by postinst).
			unit = regexp.MustCompile(`(?m)^ExecStart=/\S+`).ReplaceAll(unit, []byte("ExecStart="+ext+"/usr/bin/"+s.name))
			copyPath := filepath.Join(t.TempDir(), s.name+".service")
			if err := os.WriteFile(copyPath, unit, 0o644); err != nil {
				t.Fatal(err)
			}
			// Unknown keys and bad values are warnings with exit status 0: any output fails.
			cmd := exec.Command("systemd-analyze", "verify", copyPath)
			cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0")
			out, err := cmd.CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) != 0 {
				t.Errorf("systemd-analyze verify %s.service: %v\n%s", s.name, err, out)
			}
		}
	})
}

func account(t *testing.T, root, user string) (uid, gid string, groups map[string]bool) {
	t.Helper()
	groups = map[string]bool{}
	pw, _ := os.ReadFile(filepath.Join(root, "etc/passwd"))
	for _, l := range strings.Split(string(pw), "\n") {
		if f := strings.Split(l, ":"); len(f) > 4 && f[0] == user {
			uid, gid = f[2], f[3]
		}
	}
	gr, _ := os.ReadFile(filepath.Join(root, "etc/group"))
	for _, l := range strings.Split(string(gr), "\n") {
		if f := strings.Split(l, ":"); len(f) == 4 {
			for _, m := range strings.Split(f[3], ",") {
				if m == user {
					groups[f[0]] = true
				}
			}
		}
	}
	return uid, gid, groups
}

func checkDir(t *testing.T, dir, uid, gid string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("data directory: %v", err)
	}
	if fi.Mode().Perm() != 0o700 || !fi.IsDir() {
		t.Errorf("%s: mode %v, want drwx------", dir, fi.Mode())
	}
	if own := ownerOf(fi); own != uid+":"+gid {
		t.Errorf("%s: owner %s, want %s:%s", dir, own, uid, gid)
	}
}

// checkLayout checks the update layout postinst makes: current names the package's binary
// (versions/<its version>/posagent, the same bytes as /usr/bin/posagent, 0755) and previous
// names wantPrev ("" for none).
func checkLayout(t *testing.T, root, wantPrev string) {
	t.Helper()
	lib := filepath.Join(root, "usr/lib/posagent")
	cur, err := os.Readlink(filepath.Join(lib, "current"))
	if err != nil || !strings.HasPrefix(cur, "versions/") {
		t.Fatalf("/usr/lib/posagent/current: %q, %v; want a link into versions/", cur, err)
	}
	got, err := os.ReadFile(filepath.Join(lib, cur, "posagent"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(root, "usr/bin/posagent"))
	if !bytes.Equal(got, want) {
		t.Errorf("%s/posagent is not the package's /usr/bin/posagent", cur)
	}
	if fi, _ := os.Stat(filepath.Join(lib, cur, "posagent")); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("%s/posagent: mode %v, want 0755", cur, fi)
	}
	prev, _ := os.Readlink(filepath.Join(lib, "previous"))
	if prev != wantPrev {
		t.Errorf("/usr/lib/posagent/previous = %q, want %q", prev, wantPrev)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
