package device

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/drivers/camera"
	"github.com/posagent/posagent/drivers/scanner"
)

// cameraScanner is a camera (devices.scanner.port camera:/dev/videoN, camera:VID:PID or
// frames:DIR) used as the scanner: its codes go through the same classification and
// checkout as a serial scanner's, and it comes and goes like the other devices.
type cameraScanner struct {
	*camera.Scanner
	mu        sync.Mutex
	connected bool
	name      string
}

// openCamera opens the camera the port names. A camera that is not plugged in yet is
// waited for; a recording (frames:) is connected from the start.
func openCamera(port string, log *slog.Logger, onEvent func(DeviceState)) (*cameraScanner, error) {
	c := &cameraScanner{name: port}
	src, err := camera.Open(port, camera.Options{OnEvent: func(ev camera.Event) {
		c.mu.Lock()
		c.connected, c.name = ev.Connected, ev.Name
		c.mu.Unlock()
		st := DeviceState{Device: "scanner", Configured: true, TTY: ev.Name, Connected: ev.Connected}
		if ev.Err != nil {
			st.Error = ev.Err.Error()
		}
		onEvent(st)
	}})
	if err != nil {
		return nil, err
	}
	if _, ok := src.(*camera.Dir); ok {
		c.connected = true
	}
	c.Scanner = camera.NewScanner(src, camera.Config{Logger: log.With("device", "scanner")})
	return c, nil
}

// Next is camera.Scanner's, except that the end of a recording (frames:) is not an error
// the scan loop would retry: the scanner then stays quiet until ctx ends.
func (c *cameraScanner) Next(ctx context.Context) (scanner.Scan, error) {
	sc, err := c.Scanner.Next(ctx)
	if errors.Is(err, io.EOF) {
		<-ctx.Done()
		return scanner.Scan{}, ctx.Err()
	}
	return sc, err
}

// state is what the status page shows for the camera.
func (c *cameraScanner) state() (connected bool, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected, c.name
}

// validCameraPort checks the form of a camera port without opening it (a recording's
// directory may be made later; a camera plugged in later).
func validCameraPort(port string) error {
	switch {
	case strings.HasPrefix(port, camera.FramesPrefix):
		if strings.TrimPrefix(port, camera.FramesPrefix) == "" {
			return posagent.Invalidf("frames: needs a directory")
		}
		return nil
	default:
		_, err := camera.ParseDevice(strings.TrimPrefix(port, camera.CameraPrefix))
		return err
	}
}
