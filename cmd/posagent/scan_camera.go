package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/posagent/posagent/drivers/camera"
	"github.com/posagent/posagent/qr"
)

// scanCamera is 'posagent scan' with a camera or a recording of frames as the scanner:
// the same JSON line per code, each code once while it stays in view. A recording ends
// the command when its last frame is decoded.
func (m *Main) scanCamera(ctx context.Context, port string, fps float64, count int, timeout time.Duration, cls *qr.Classifier) error {
	if fps < 0 {
		return usageError{fmt.Errorf("--fps %v: want 0 or more", fps)}
	}
	opts := camera.Options{FPS: fps}
	if fps == 0 {
		opts.FPS = -15 // as fast as decoded; frame times 1/15 s apart
	}
	if strings.HasPrefix(port, camera.CameraPrefix) {
		// The agent waits for a camera that is not there; a command says so at once.
		if loc, err := camera.ParseDevice(strings.TrimPrefix(port, camera.CameraPrefix)); err == nil {
			if err := camera.Present(loc); err != nil {
				return withHint(fmt.Errorf("scan: no camera at %s: %w", loc, err), "plug the camera in and check 'ls /dev/video*' (or 'posagent ports'); camera:VID:PID finds it wherever it is")
			}
		}
	}
	src, err := camera.Open(port, opts)
	if err != nil {
		return withHint(fmt.Errorf("scan: %w", err), "a camera is camera:/dev/video0 or camera:VID:PID; a recording is frames:DIR with .png or .jpg files")
	}
	sc := camera.NewScanner(src, camera.Config{
		NoDrop:     fps == 0,
		Classifier: cls,
		Logger:     slog.New(slog.NewTextHandler(m.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	defer sc.Close()
	for n := 0; count == 0 || n < count; n++ {
		s, err := sc.Next(ctx)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			if count > 0 {
				return fmt.Errorf("scan: the recording ended after %d of %d code(s)", n, count)
			}
			return nil
		case errors.Is(err, context.Canceled):
			return nil // interrupted: the normal end
		case errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("scan: %d of %d code(s) within %v", n, count, timeout)
		default:
			return portError(fmt.Errorf("scan: %w", err))
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s.Classification); err != nil {
			return err
		}
		if _, err := m.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}
