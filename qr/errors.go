package qr

import (
	"errors"
	"fmt"

	"github.com/posagent/posagent"
)

// Sentinels wrapped by every *ParseError, for callers that branch on the kind of failure.
var (
	// ErrMalformed: the bytes do not have the structure of the format (bad TLV, truncated
	// data object, invalid UTF-8, bad base64, nesting too deep, input too large).
	ErrMalformed = errors.New("malformed")
	// ErrCRC: the structure holds but the EMV MPM checksum (tag 63) does not match.
	ErrCRC = errors.New("checksum mismatch")
	// ErrRule: well-formed, but a field breaks a rule of the specification. Lenient MPM
	// parsing reports these as warnings instead.
	ErrRule = errors.New("rule violated")
)

// ParseError says what was wrong with a QR payload: which data object (ID, or a path such
// as "62.05" inside a template, empty when it concerns the whole payload), where (Offset,
// counted in characters from the start of the payload; -1 when unknown) and what rule was
// broken. Err is one of ErrMalformed, ErrCRC, ErrRule.
type ParseError struct {
	ID     string
	Offset int
	Msg    string
	Err    error
}

func (e *ParseError) Error() string {
	switch {
	case e.ID != "" && e.Offset >= 0:
		return fmt.Sprintf("tag %s at offset %d: %s", e.ID, e.Offset, e.Msg)
	case e.ID != "":
		return fmt.Sprintf("tag %s: %s", e.ID, e.Msg)
	case e.Offset >= 0:
		return fmt.Sprintf("offset %d: %s", e.Offset, e.Msg)
	}
	return e.Msg
}

// Unwrap returns the sentinel (ErrMalformed, ErrCRC or ErrRule).
func (e *ParseError) Unwrap() error { return e.Err }

// Is makes every ParseError match posagent.ErrInvalidInput as well as its own sentinel.
func (e *ParseError) Is(target error) bool { return target == posagent.ErrInvalidInput }

func malformed(id string, off int, format string, args ...any) *ParseError {
	return &ParseError{ID: id, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrMalformed}
}

func ruleErr(id string, off int, format string, args ...any) *ParseError {
	return &ParseError{ID: id, Offset: off, Msg: fmt.Sprintf(format, args...), Err: ErrRule}
}
