package camera

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/posagent/posagent"
	"github.com/posagent/posagent/qr"
)

// Dir plays the image files of a directory as a camera would deliver them: PNG and JPEG
// files (.png, .jpg, .jpeg, any case) in name order, one every 1/FPS seconds. Files are
// never skipped: a slow reader slows the playback down (the Scanner drops the frames it
// has no time for, as with a camera). After the last file Next returns io.EOF.
type Dir struct {
	dir   string
	files []string
	fps   float64

	mu    sync.Mutex
	i     int
	start time.Time
	done  chan struct{}
	once  sync.Once
}

// OpenDir lists the frames of dir, to be played at fps frames per second; fps < 0 plays
// them as fast as they are asked for (with Config.NoDrop, as fast as they are decoded),
// 0 means 15. A directory without frames gives an error wrapping
// posagent.ErrInvalidInput.
func OpenDir(dir string, fps float64) (*Dir, error) {
	if fps == 0 {
		fps = 15
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("camera: frames: %w", err)
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".png", ".jpg", ".jpeg":
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				files = append(files, filepath.Join(dir, e.Name()))
			}
		}
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, posagent.Invalidf("camera: frames: no .png or .jpg files in %s", dir)
	}
	return &Dir{dir: dir, files: files, fps: fps, done: make(chan struct{})}, nil
}

// Len is the number of frames.
func (d *Dir) Len() int { return len(d.files) }

// Next waits for the next frame's time and returns it. A file that cannot be read as an
// image gives an error naming it; the next call goes on with the following file.
func (d *Dir) Next(ctx context.Context) (Image, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.i >= len(d.files) {
		return Image{}, closedOr(d.done, io.EOF)
	}
	if d.start.IsZero() {
		d.start = time.Now()
	}
	at := d.start.Add(time.Duration(float64(d.i) * float64(time.Second) / math.Abs(d.fps)))
	if wait := time.Until(at); wait > 0 && d.fps > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Image{}, ctx.Err()
		case <-d.done:
			t.Stop()
			return Image{}, ErrClosed
		}
	}
	select {
	case <-d.done:
		return Image{}, ErrClosed
	default:
	}
	path := d.files[d.i]
	d.i++
	img, err := readFrame(path)
	if err != nil {
		return Image{}, err
	}
	return Image{Image: img, At: at}, nil
}

func readFrame(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("camera: frames: %w", err)
	}
	defer f.Close()
	img, err := qr.ReadImage(f)
	if err != nil {
		return nil, fmt.Errorf("camera: frames: %s: %w", filepath.Base(path), err)
	}
	return img, nil
}

// Close ends the playback; a blocked Next returns ErrClosed.
func (d *Dir) Close() error {
	d.once.Do(func() { close(d.done) })
	return nil
}
