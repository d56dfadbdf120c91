package update

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Layout is the directory that holds the installed versions and the links to them.
type Layout struct{ Root string }

// File names in the layout.
const (
	versionsDir = "versions"
	currentLink = "current"
	prevLink    = "previous"
	stateFile   = "update-state.json"
	binaryName  = "posagent"
)

// Binary is the path of version's binary.
func (l Layout) Binary(version string) string {
	return filepath.Join(l.Root, versionsDir, version, binaryName)
}

// link reads a version link ("current" or "previous"); "" when it does not exist.
func (l Layout) link(name string) (string, error) {
	t, err := os.Readlink(filepath.Join(l.Root, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	dir, v := filepath.Split(filepath.Clean(t))
	if filepath.Clean(dir) != versionsDir || v == "" {
		return "", fmt.Errorf("%s -> %s: not a link into %s/", filepath.Join(l.Root, name), t, versionsDir)
	}
	return v, nil
}

// Current is the version the current link names ("" before the first install).
func (l Layout) Current() (string, error) { return l.link(currentLink) }

// Previous is the version the previous link names ("" when there is none).
func (l Layout) Previous() (string, error) { return l.link(prevLink) }

// setLink points name at versions/<version> atomically: a new link beside it, renamed over it.
// An empty version removes the link.
func (l Layout) setLink(name, version string) error {
	p := filepath.Join(l.Root, name)
	if version == "" {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return syncDir(l.Root)
	}
	tmp := filepath.Join(l.Root, "."+name+"."+randHex())
	if err := os.Symlink(filepath.Join(versionsDir, version), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(l.Root)
}

// install writes bin as version's binary (0755): written beside, synced, renamed.
func (l Layout) install(version string, bin []byte) error {
	dir := filepath.Dir(l.Binary(version))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+binaryName+"."+randHex())
	if err := writeNew(tmp, bin, 0o755); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, l.Binary(version)); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// prune removes the installed versions that neither current nor previous names.
func (l Layout) prune() error {
	cur, err := l.Current()
	if err != nil {
		return err
	}
	prev, err := l.Previous()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(filepath.Join(l.Root, versionsDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() != cur && e.Name() != prev {
			if err := os.RemoveAll(filepath.Join(l.Root, versionsDir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Phase is where an apply is.
type Phase string

// The phases of an apply. Installing and Switched are the unfinished ones a crash can
// leave; the others are outcomes.
const (
	PhaseInstalling Phase = "installing"  // writing the new version beside the current one; current untouched
	PhaseSwitched   Phase = "switched"    // current names the new version; not yet found healthy
	PhaseHealthy    Phase = "healthy"     // the new version passed the health check
	PhaseRolledBack Phase = "rolled-back" // the previous version is current again
	PhaseAborted    Phase = "aborted"     // stopped before the switch; nothing changed
	PhaseFailed     Phase = "failed"      // could not go back (no previous version, or the rollback failed)
)

// State is the record of the last apply, in ROOT/update-state.json.
type State struct {
	Phase   Phase     `json:"phase"`
	From    string    `json:"from,omitempty"`     // the version current named before
	Prior   string    `json:"previous,omitempty"` // the version previous named before
	To      string    `json:"to"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Reason  string    `json:"reason,omitempty"` // why it rolled back, aborted or failed
}

// Unfinished reports whether an apply stopped in the middle (a crash or a kill).
func (s State) Unfinished() bool { return s.Phase == PhaseInstalling || s.Phase == PhaseSwitched }

// ReadState reads the state file; the zero State when there is none.
func (l Layout) ReadState() (State, error) {
	b, err := os.ReadFile(filepath.Join(l.Root, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	} else if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("%s: %w", filepath.Join(l.Root, stateFile), err)
	}
	return s, nil
}

// writeState replaces the state file atomically and durably.
func (l Layout) writeState(s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.Root, "."+stateFile+"."+randHex())
	if err := writeNew(tmp, append(b, '\n'), 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, filepath.Join(l.Root, stateFile)); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(l.Root)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validName rejects versions that are not safe as one path element.
func validName(v string) error {
	if v == "" || v == "." || v == ".." || strings.ContainsAny(v, "/\\\x00") || strings.HasPrefix(v, ".") {
		return fmt.Errorf("version %q is not a directory name", v)
	}
	return nil
}
