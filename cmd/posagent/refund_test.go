package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRefund_CommandLine(t *testing.T) {
	t.Setenv("POSAGENT_CONFIG", "")
	cfg := filepath.Join(t.TempDir(), "agent.yaml")
	// An agent config whose API nobody serves: the port is closed.
	os.WriteFile(cfg, []byte("terminal: T1\nstate_dir: "+t.TempDir()+"\nkey_file: /nonexistent\napi: {listen: \"127.0.0.1:1\", token: \"0123456789abcdef0123\"}\nacquirer: {url: \"http://127.0.0.1:1\"}\n"), 0o600)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"one argument", []string{"refund", "p-1"}, 2, "refund takes PAYMENT_ID and AMOUNT"},
		{"no config", []string{"refund", "p-1", "1.00"}, 2, "needs the agent's --config FILE"},
		{"agent not running", []string{"refund", "--config", cfg, "p-1", "1.00"}, 1, "is 'posagent run' running with this config?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("got %d %q, want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("not one line: %q", stderr)
			}
		})
	}
}
