// Package posagent holds the domain types shared by every part of the terminal agent:
// money (Amount, Currency), payment methods, and the errors callers branch on.
//
// Subpackages implement one technology each (qr/ for QR codes, drivers/ for serial
// peripherals, offline/ for the SQLite journal, sync/ for the acquirer protocol) and
// cmd/ wires them together. Nothing here imports a subpackage.
package posagent

import "errors"

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
