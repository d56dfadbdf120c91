// Package camera reads QR codes with a camera: a Source of frames (a V4L2 device such as
// a USB UVC camera module, or a directory of recorded frames), and a Scanner that decodes
// them continuously and hands each code, once, to the same classification as serial
// scans.
package camera

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"strings"
	"time"

	"github.com/posagent/posagent"
)

// ErrClosed is returned by a Source or Scanner used after Close.
var ErrClosed = errors.New("camera: closed")

// Image is one frame.
type Image struct {
	Image image.Image
	// At is when the frame was taken: the driver's clock for a camera, the playback
	// clock (start + index/fps) for recorded frames.
	At time.Time
}

// Source is where frames come from. Next blocks until the next frame, ctx ends
// (ctx.Err()), the source ends (io.EOF, recordings only) or fails; a camera that is
// unplugged does not fail: Next waits for it to come back. Next is called from one
// goroutine; Close may be called from another and makes a blocked Next return ErrClosed.
type Source interface {
	Next(ctx context.Context) (Image, error)
	Close() error
}

// Port prefixes: a scanner port that starts with one of these is a camera.
const (
	CameraPrefix = "camera:" // camera:/dev/videoN or camera:VID:PID
	FramesPrefix = "frames:" // frames:DIR
)

// IsPort reports whether a scanner port names a camera source rather than a serial port.
func IsPort(port string) bool {
	return strings.HasPrefix(port, CameraPrefix) || strings.HasPrefix(port, FramesPrefix)
}

// Options configure a source.
type Options struct {
	// FPS is the frame rate: what a camera is asked for, the playback rate of recorded
	// frames. 0 means 15; a negative value plays a recording as fast as it is read (the
	// frames keep timestamps 1/|FPS| apart) and means 15 for a camera.
	FPS float64
	// Width and Height are the frame size asked of a camera (it may choose a near one);
	// 0 means 640×480, enough for a phone's code held 10–30 cm away and cheap to decode.
	Width, Height int
	// OnEvent, if set, is told when a camera comes and goes (not for recordings).
	OnEvent func(Event)
}

// Event is a camera appearing or disappearing.
type Event struct {
	Connected bool
	Name      string // the device node, e.g. /dev/video0
	Err       error  // why it went away, when it did
}

// Open opens the source a scanner port names: camera:/dev/videoN, camera:VID:PID (the
// first capture node of that USB camera) or frames:DIR. A malformed port gives an error
// wrapping posagent.ErrInvalidInput; a camera that is not there yet is waited for by
// Next, not reported here.
func Open(port string, opts Options) (Source, error) {
	if opts.FPS == 0 {
		opts.FPS = 15
	}
	switch {
	case strings.HasPrefix(port, FramesPrefix):
		dir := strings.TrimPrefix(port, FramesPrefix)
		if dir == "" {
			return nil, posagent.Invalidf("camera: %q: want frames:DIR", port)
		}
		return OpenDir(dir, opts.FPS)
	case strings.HasPrefix(port, CameraPrefix):
		loc, err := ParseDevice(strings.TrimPrefix(port, CameraPrefix))
		if err != nil {
			return nil, err
		}
		opts.FPS = math.Abs(opts.FPS)
		return openV4L2(loc, opts)
	}
	return nil, posagent.Invalidf("camera: %q is not a camera port (camera:/dev/videoN, camera:VID:PID or frames:DIR)", port)
}

// Device locates a camera: by device node, or by USB vendor and product ID.
type Device struct {
	Path     string // /dev/videoN
	VID, PID string // four hex digits each, lower case
}

func (d Device) String() string {
	if d.Path != "" {
		return d.Path
	}
	return d.VID + ":" + d.PID
}

// ParseDevice reads what follows "camera:": a path (/dev/videoN) or VID:PID.
func ParseDevice(s string) (Device, error) {
	switch {
	case strings.HasPrefix(s, "/"):
		return Device{Path: s}, nil
	case isVIDPID(s):
		return Device{VID: strings.ToLower(s[:4]), PID: strings.ToLower(s[5:])}, nil
	}
	return Device{}, posagent.Invalidf("camera: %q is neither a device path (/dev/video0) nor VID:PID (four hex digits each)", s)
}

func isVIDPID(s string) bool {
	if len(s) != 9 || s[4] != ':' {
		return false
	}
	for i, c := range s {
		if i == 4 {
			continue
		}
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return true
}

// closedOr returns ErrClosed when done is closed, else err.
func closedOr(done <-chan struct{}, err error) error {
	select {
	case <-done:
		return ErrClosed
	default:
		return err
	}
}

// wrap prefixes an error with the device name.
func wrap(name string, err error) error { return fmt.Errorf("camera %s: %w", name, err) }
