package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	"github.com/posagent/posagent/device"
)

// loadConfig loads the agent's config as the agent under systemd sees it: the process's
// environment first, then the env file beside the config (the unit's EnvironmentFile,
// which 'posagent provision' writes: terminal, key file, API token), so a technician's
// shell gets the same values as the service.
func loadConfig(path string) (device.Config, error) {
	return device.LoadConfig(path, envWithFile(filepath.Join(filepath.Dir(path), "env")))
}

// agentConfig loads the agent's config for a command that can do without one: path (a
// --config flag or $POSAGENT_CONFIG), else defaultConfigFile when it exists. found is
// false when there is none, or when the default one does not load (the command's own
// defaults stand); a config the user named that does not load is an error.
func agentConfig(path string) (cfg device.Config, found bool, err error) {
	explicit := path != ""
	if !explicit {
		if _, err := os.Stat(defaultConfigFile); err != nil {
			return cfg, false, nil
		}
		path = defaultConfigFile
	}
	cfg, err = loadConfig(path)
	switch {
	case err != nil && explicit:
		return cfg, false, err
	case err != nil:
		return cfg, false, nil
	}
	return cfg, true, nil
}

// envWithFile returns a getenv that falls back to the KEY=VALUE lines of file (ignored
// when it cannot be read: the caller's own errors then name what is missing).
func envWithFile(file string) func(string) string {
	vars := map[string]string{}
	if f, err := os.Open(file); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
				v = v[1 : len(v)-1]
			}
			vars[strings.TrimSpace(k)] = v
		}
		f.Close()
	}
	return func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return vars[k]
	}
}
