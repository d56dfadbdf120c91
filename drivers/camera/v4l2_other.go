//go:build !linux

package camera

import (
	"errors"
	"fmt"
)

// openV4L2 is Linux only.
func openV4L2(loc Device, opts Options) (Source, error) {
	return nil, fmt.Errorf("camera %s: %w", loc, errors.ErrUnsupported)
}

// Present is Linux only.
func Present(loc Device) error {
	return fmt.Errorf("camera %s: %w", loc, errors.ErrUnsupported)
}
