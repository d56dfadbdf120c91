//go:build linux

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// On a terminal, purge asks before it deletes the journal (default no); without one, and
// without POSAGENT_PURGE_DATA, it keeps it.
func TestPostrm_PurgeAsks(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("no script(1) to give postrm a terminal")
	}
	postrm, err := filepath.Abs("scripts/postrm")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, answer, env string
		tty, wantKept     bool
	}{
		{"yes on a terminal", "y\n", "", true, false},
		{"no on a terminal", "n\n", "", true, true},
		{"enter on a terminal", "\n", "", true, true},
		{"no terminal", "", "", false, true},
		{"no terminal, told yes", "", "POSAGENT_PURGE_DATA=yes", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			data := filepath.Join(root, "var/lib/posagent")
			if err := os.MkdirAll(data, 0o700); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(data, "journal.db"), []byte("sales"), 0o600)
			env := "env DPKG_MAINTSCRIPT_PACKAGE=posagent DPKG_ROOT=" + root + " " + tt.env + " sh " + postrm + " purge"
			var cmd *exec.Cmd
			if tt.tty {
				cmd = exec.Command("script", "-qec", env, "/dev/null")
			} else {
				cmd = exec.Command("sh", "-c", env)
			}
			cmd.Stdin = strings.NewReader(tt.answer)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("postrm purge: %v\n%s", err, out)
			}
			if tt.tty && !strings.Contains(string(out), "[y/N]") {
				t.Errorf("no question on a terminal:\n%s", out)
			}
			_, statErr := os.Stat(filepath.Join(data, "journal.db"))
			if kept := statErr == nil; kept != tt.wantKept {
				t.Errorf("journal kept %v, want %v\n%s", kept, tt.wantKept, out)
			}
		})
	}
}
