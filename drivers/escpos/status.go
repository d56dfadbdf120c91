package escpos

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a print job fails with, for callers to branch on with errors.Is. A *JobError
// wraps one of them.
var (
	// ErrNoAnswer means the printer did not answer DLE EOT in time: it is off, unplugged,
	// on another port or baud rate, or not a printer. It is reported as offline.
	ErrNoAnswer = errors.New("printer does not answer")
	// ErrOffline means the printer says it is offline for a reason it does not name.
	ErrOffline = errors.New("printer offline")
	// ErrCoverOpen means the printer's cover is open.
	ErrCoverOpen = errors.New("printer cover open")
	// ErrPaperEnd means the printer is out of paper.
	ErrPaperEnd = errors.New("printer out of paper")
	// ErrPrinterError means the printer reports an error (cutter jam, head overheated).
	ErrPrinterError = errors.New("printer error")
	// ErrBadStatus means the printer answered with a byte that is not an ESC/POS status.
	ErrBadStatus = errors.New("not an ESC/POS status byte")
)

// Status is what the printer reports through DLE EOT 1 (printer), 2 (offline cause) and
// 4 (roll paper sensor).
type Status struct {
	Offline      bool // DLE EOT 1, bit 3
	DrawerHigh   bool // DLE EOT 1, bit 2: drawer kick-out connector pin 3 (drawer sensor)
	CoverOpen    bool // DLE EOT 2, bit 2
	FeedButton   bool // DLE EOT 2, bit 3: paper is being fed by the feed button
	PaperStop    bool // DLE EOT 2, bit 5: printing stopped because the paper ran out
	Error        bool // DLE EOT 2, bit 6
	PaperNearEnd bool // DLE EOT 4, bits 2–3
	PaperEnd     bool // DLE EOT 4, bits 5–6
}

// IsStatusByte reports whether b has the fixed bits of every DLE EOT answer: bits 1 and 4
// set, bits 0 and 7 clear. Anything else on the line (a stray automatic status, noise, a
// late answer to an earlier query is indistinguishable) is skipped by the driver.
func IsStatusByte(b byte) bool { return b&0x93 == 0x12 }

// DecodeStatus decodes the answers to DLE EOT 1, 2 and 4, in that order. It fails, with
// an error wrapping ErrBadStatus, when a byte lacks the fixed bits.
func DecodeStatus(printer, offline, paper byte) (Status, error) {
	for i, b := range []byte{printer, offline, paper} {
		if !IsStatusByte(b) {
			return Status{}, fmt.Errorf("%w: DLE EOT %d answered 0x%02X", ErrBadStatus, []int{1, 2, 4}[i], b)
		}
	}
	return Status{
		Offline:      printer&0x08 != 0,
		DrawerHigh:   printer&0x04 != 0,
		CoverOpen:    offline&0x04 != 0,
		FeedButton:   offline&0x08 != 0,
		PaperStop:    offline&0x20 != 0,
		Error:        offline&0x40 != 0,
		PaperNearEnd: paper&0x0C != 0,
		PaperEnd:     paper&0x60 != 0,
	}, nil
}

// Err returns why the printer cannot print, most specific reason first (paper end, cover
// open, error, offline), or nil when it can. Paper near-end is a warning, not an error.
func (s Status) Err() error {
	switch {
	case s.PaperEnd || s.PaperStop:
		return ErrPaperEnd
	case s.CoverOpen:
		return ErrCoverOpen
	case s.Error:
		return ErrPrinterError
	case s.Offline:
		return ErrOffline
	}
	return nil
}

// String lists the conditions that are set ("ready" when none is).
func (s Status) String() string {
	var f []string
	for _, c := range []struct {
		on   bool
		name string
	}{{s.Offline, "offline"}, {s.CoverOpen, "cover-open"}, {s.PaperEnd || s.PaperStop, "paper-end"},
		{s.PaperNearEnd, "paper-near-end"}, {s.Error, "error"}, {s.FeedButton, "feeding"}} {
		if c.on {
			f = append(f, c.name)
		}
	}
	if len(f) == 0 {
		return "ready"
	}
	return strings.Join(f, ",")
}

// JobError is a print job that failed: refused before anything was sent (Sent is 0), or
// reported failed by the printer after it was sent. Err is one of the sentinels above or
// the port's error.
type JobError struct {
	Stage  string // "before", "send" or "after"
	Sent   int    // bytes written to the port
	Status Status // the last status read
	Err    error
}

func (e *JobError) Error() string {
	switch e.Stage {
	case "before":
		return fmt.Sprintf("print refused, nothing sent: %v", e.Err)
	case "send":
		return fmt.Sprintf("print failed after %d bytes: %v", e.Sent, e.Err)
	}
	return fmt.Sprintf("print failed, the printer reports after the job: %v", e.Err)
}

func (e *JobError) Unwrap() error { return e.Err }
