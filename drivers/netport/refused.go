package netport

import (
	"context"
	"errors"
	"syscall"
)

// isRefused reports a connection refused or timed out: nothing listens there now.
func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded)
}
