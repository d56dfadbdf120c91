// Package posagent holds the domain types shared by every part of the terminal agent:
// money (Amount, Currency), payment methods, and the errors callers branch on.
//
// Subpackages implement one technology each (qr/ for QR codes, drivers/ for serial
// peripherals, offline/ for the SQLite journal, sync/ for the acquirer protocol) and
// cmd/ wires them together. Nothing here imports a subpackage.
package posagent

import (
	"errors"
	"fmt"
)

// Sentinel errors that callers branch on with errors.Is. Subpackages wrap them with
// context ("parse qr: tag 54 …: %w") rather than defining look-alikes.
var (
	// ErrInvalidInput means the caller's input was malformed or broke a rule; retrying the
	// same input cannot succeed. The CLI maps it to exit status 1.
	ErrInvalidInput = errors.New("invalid input")

	// ErrUnsupported means the input is well-formed but describes something this build does
	// not handle (an unknown currency, an unknown code format).
	ErrUnsupported = errors.New("unsupported")
)

// Error is an error in the caller's input whose message stands on its own: it prints just
// Msg, and errors.Is matches it with Kind (ErrInvalidInput or ErrUnsupported).
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel the error is of.
func (e *Error) Unwrap() error { return e.Kind }

// Invalidf returns an *Error of kind ErrInvalidInput with a formatted message.
func Invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalidInput, Msg: fmt.Sprintf(format, args...)}
}
