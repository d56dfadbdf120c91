package update

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Applier installs a bundle on a terminal and keeps it only if the agent comes up healthy.
type Applier struct {
	Layout Layout
	Keys   Keyring
	Policy Policy // Running is used when the layout has no current version yet

	// Restart restarts the agent's service so that it runs Layout's current binary
	// (systemctl restart posagent). It is called after the switch and after a switch back.
	Restart func(ctx context.Context) error
	// Health reports whether the agent that answers now is version and works; nil means healthy.
	Health func(ctx context.Context, version string) error
	// Deadline is how long the new version has to become healthy after the restart.
	Deadline time.Duration
	// Interval is the pause between health checks (default 250 ms).
	Interval time.Duration
	// Log receives one line per step; may be nil.
	Log func(format string, args ...any)
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Result is what an Apply or a Resolve did.
type Result struct {
	State   State
	Elapsed time.Duration // from the restart to healthy, or to rolled back and restarted
	// PreviousHealthy says, after a rollback, whether the previous version answered healthy
	// again within the deadline (nil when it did, else why not).
	PreviousHealthy error
}

// ErrRolledBack is returned by Apply when the new version did not become healthy and the
// previous one was put back.
var ErrRolledBack = errors.New("update rolled back")

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Applier) logf(format string, args ...any) {
	if a.Log != nil {
		a.Log(format, args...)
	}
}

// Step is what to do about the state an apply left behind (Decide).
type Step int

// The recovery steps.
const (
	StepNone     Step = iota // nothing unfinished
	StepAbort                // stopped before the switch: record it aborted, current is untouched
	StepRollBack             // switched but never found healthy: switch back to From and restart
	StepFail                 // switched with nothing to go back to: record it failed
)

// Decide is the recovery rule, without I/O: what to do with the recorded state s when
// current is the version the current link names now. An update that was not confirmed
// healthy is not trusted after a crash.
func Decide(s State, current string) Step {
	switch s.Phase {
	case PhaseInstalling:
		if current == s.To && s.To != s.From {
			// the crash came between the switch and recording it
			if s.From == "" {
				return StepFail
			}
			return StepRollBack
		}
		return StepAbort
	case PhaseSwitched:
		if s.From == "" {
			return StepFail
		}
		return StepRollBack
	}
	return StepNone
}

// ErrBusy is returned when another apply or resolve holds the layout.
var ErrBusy = errors.New("another update is in progress")

// lockWait is how long lock waits for a lock held by someone else before ErrBusy: a
// process started by the last apply can hold the lock's open file for a moment between
// its fork and its exec (long under emulation, where fork is not vfork).
const lockWait = 3 * time.Second

// lock takes the layout's lock (a flock on the root directory itself, so no file is
// created); the root must exist. Held elsewhere for longer than lockWait, it is ErrBusy.
func (a *Applier) lock() (release func(), err error) {
	d, err := os.Open(a.Layout.Root)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { d.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			d.Close()
			return nil, err
		}
		if time.Now().After(deadline) {
			d.Close()
			return nil, fmt.Errorf("%s: %w", a.Layout.Root, ErrBusy)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Resolve finishes an apply that a crash interrupted (see Decide). It is a no-op when the
// last apply finished.
func (a *Applier) Resolve(ctx context.Context) (Result, error) {
	s, err := a.Layout.ReadState()
	if err != nil || !s.Unfinished() {
		return Result{State: s}, err
	}
	release, err := a.lock()
	if err != nil {
		return Result{State: s}, err
	}
	defer release()
	return a.resolve(ctx)
}

func (a *Applier) resolve(ctx context.Context) (Result, error) {
	s, err := a.Layout.ReadState()
	if err != nil {
		return Result{}, err
	}
	cur, err := a.Layout.Current()
	if err != nil {
		return Result{State: s}, err
	}
	switch Decide(s, cur) {
	case StepAbort:
		a.logf("the apply of %s was interrupted before the switch: %s stays current", s.To, s.From)
		s.Phase, s.Reason, s.Updated = PhaseAborted, "interrupted before the switch", a.now().UTC()
		return Result{State: s}, a.Layout.writeState(s)
	case StepFail:
		s.Phase, s.Reason, s.Updated = PhaseFailed, "interrupted after the switch, with no previous version to go back to", a.now().UTC()
		return Result{State: s}, a.Layout.writeState(s)
	case StepRollBack:
		a.logf("the apply of %s was interrupted before it was found healthy: going back to %s", s.To, s.From)
		return a.rollBack(ctx, s, "interrupted before the health check passed", a.now())
	}
	return Result{State: s}, nil
}

// Apply verifies bundle and, only if it passes, installs it beside the current version,
// switches to it, restarts the agent and waits for it to be healthy; when it is not within
// the deadline, it switches back to the previous version and restarts that. An apply that a
// crash interrupted earlier is resolved first. The error wraps ErrRolledBack after a rollback,
// a refusal (ErrBadSignature, …) when nothing was touched.
func (a *Applier) Apply(ctx context.Context, bundle []byte) (Result, error) {
	if a.Restart == nil || a.Health == nil || a.Deadline <= 0 {
		return Result{}, errors.New("update: Applier needs Restart, Health and a Deadline")
	}
	if r, err := a.Resolve(ctx); err != nil {
		return r, fmt.Errorf("resolve the interrupted apply: %w", err)
	}
	cur, err := a.Layout.Current()
	if err != nil {
		return Result{}, err
	}
	prior, err := a.Layout.Previous()
	if err != nil {
		return Result{}, err
	}
	pol := a.Policy
	if cur != "" {
		pol.Running = cur
	}
	bd, err := Verify(bundle, a.Keys, pol)
	if err != nil {
		return Result{}, err
	}
	to := bd.Manifest.Version
	if err := validName(to); err != nil {
		return Result{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if to == cur {
		return Result{}, fmt.Errorf("%w: %s is already the current version", ErrDowngrade, to)
	}
	// Verified: from here on the layout changes, under its lock.
	if err := os.MkdirAll(a.Layout.Root, 0o755); err != nil {
		return Result{}, err
	}
	release, err := a.lock()
	if err != nil {
		return Result{}, err
	}
	defer release()
	if now, err := a.Layout.Current(); err != nil || now != cur {
		return Result{}, errors.Join(fmt.Errorf("%w: current changed while the bundle was verified", ErrBusy), err)
	}
	if s, err := a.Layout.ReadState(); err != nil || s.Unfinished() {
		return Result{}, errors.Join(fmt.Errorf("%w: an apply of %s started meanwhile", ErrBusy, s.To), err)
	}
	start := a.now().UTC()
	s := State{Phase: PhaseInstalling, From: cur, Prior: prior, To: to, Started: start, Updated: start}
	if err := a.Layout.writeState(s); err != nil {
		return Result{}, err
	}
	if err := a.Layout.install(to, bd.Binary); err != nil {
		s.Phase, s.Reason, s.Updated = PhaseAborted, "install: "+err.Error(), a.now().UTC()
		return Result{State: s}, errors.Join(fmt.Errorf("install %s: %w", to, err), a.Layout.writeState(s))
	}
	if cur != "" {
		if err := a.Layout.setLink(prevLink, cur); err != nil {
			return Result{State: s}, err
		}
	}
	if err := a.Layout.setLink(currentLink, to); err != nil {
		return Result{State: s}, err
	}
	s.Phase, s.Updated = PhaseSwitched, a.now().UTC()
	if err := a.Layout.writeState(s); err != nil {
		return Result{State: s}, err
	}
	a.logf("switched %s -> %s; restarting", orNone(cur), to)
	restarted := a.now()
	err = a.Restart(ctx)
	if err == nil {
		err = a.waitHealthy(ctx, to)
	} else {
		err = fmt.Errorf("restart: %w", err)
	}
	if err == nil {
		s.Phase, s.Updated = PhaseHealthy, a.now().UTC()
		a.logf("%s is healthy after %s", to, a.now().Sub(restarted).Round(time.Millisecond))
		if err := a.Layout.writeState(s); err != nil {
			return Result{State: s}, err
		}
		if err := a.Layout.prune(); err != nil {
			a.logf("prune old versions: %v", err)
		}
		return Result{State: s, Elapsed: a.now().Sub(restarted)}, nil
	}
	a.logf("%s is not healthy: %v", to, err)
	if cur == "" {
		s.Phase, s.Reason, s.Updated = PhaseFailed, err.Error()+" (no previous version to go back to)", a.now().UTC()
		return Result{State: s}, errors.Join(fmt.Errorf("update to %s failed: %w", to, err), a.Layout.writeState(s))
	}
	r, rerr := a.rollBack(ctx, s, err.Error(), restarted)
	if rerr != nil {
		return r, rerr
	}
	return r, fmt.Errorf("%w to %s: %s did not become healthy within %s: %v", ErrRolledBack, cur, to, a.Deadline, err)
}

// rollBack points current back at s.From, restarts, and records the outcome. It goes on
// when ctx is canceled (an operator's Ctrl-C must not leave the new version half-trusted).
func (a *Applier) rollBack(ctx context.Context, s State, reason string, since time.Time) (Result, error) {
	ctx = context.WithoutCancel(ctx)
	if err := a.Layout.setLink(currentLink, s.From); err != nil {
		s.Phase, s.Reason, s.Updated = PhaseFailed, reason+"; switch back: "+err.Error(), a.now().UTC()
		return Result{State: s}, errors.Join(fmt.Errorf("switch back to %s: %w", s.From, err), a.Layout.writeState(s))
	}
	// previous names what it named before the apply; the failed version stays installed
	// for a look (the next successful apply prunes it).
	if err := a.Layout.setLink(prevLink, s.Prior); err != nil {
		a.logf("restore the previous link: %v", err)
	}
	if err := a.Restart(ctx); err != nil {
		s.Phase, s.Reason, s.Updated = PhaseFailed, reason+"; restart of "+s.From+": "+err.Error(), a.now().UTC()
		return Result{State: s}, errors.Join(fmt.Errorf("restart %s after switching back: %w", s.From, err), a.Layout.writeState(s))
	}
	res := Result{Elapsed: a.now().Sub(since)}
	s.Phase, s.Reason, s.Updated = PhaseRolledBack, reason, a.now().UTC()
	if err := a.Layout.writeState(s); err != nil {
		return Result{State: s}, err
	}
	res.State = s
	a.logf("rolled back to %s after %s", s.From, res.Elapsed.Round(time.Millisecond))
	if a.Health != nil && a.Deadline > 0 {
		res.PreviousHealthy = a.waitHealthy(ctx, s.From)
		if res.PreviousHealthy != nil {
			a.logf("%s is not healthy either: %v", s.From, res.PreviousHealthy)
		}
	}
	return res, nil
}

// waitHealthy checks the agent until it is version and healthy, or the deadline passes; the
// error is the last complete check's.
func (a *Applier) waitHealthy(ctx context.Context, version string) error {
	ctx, cancel := context.WithTimeout(ctx, a.Deadline)
	defer cancel()
	interval := a.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		err := a.Health(ctx, version)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			last = err // not the check the deadline cut short: that one says only "deadline"
		}
		select {
		case <-ctx.Done():
			return last
		case <-t.C:
		}
	}
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}
