package camera

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/posagent/posagent"
)

// A thin V4L2 layer: the ioctls a UVC camera needs for memory-mapped streaming capture.
// The structs follow <linux/videodev2.h>; their sizes are part of the ioctl numbers, and
// TestV4L2StructSizes checks them for the architecture under test (they differ between
// 32-bit ARM and arm64 where the kernel struct holds a pointer, a long or a timeval).

// ioctl numbers: _IOC(dir, 'V', nr, size).
func vidioc(dir, nr, size uintptr) uintptr { return dir<<30 | size<<16 | 'V'<<8 | nr }

const (
	iocWrite = 1
	iocRead  = 2
)

var (
	vidiocQuerycap  = vidioc(iocRead, 0, unsafe.Sizeof(v4l2Capability{}))
	vidiocEnumFmt   = vidioc(iocRead|iocWrite, 2, unsafe.Sizeof(v4l2Fmtdesc{}))
	vidiocSFmt      = vidioc(iocRead|iocWrite, 5, unsafe.Sizeof(v4l2Format{}))
	vidiocReqbufs   = vidioc(iocRead|iocWrite, 8, unsafe.Sizeof(v4l2RequestBuffers{}))
	vidiocQuerybuf  = vidioc(iocRead|iocWrite, 9, unsafe.Sizeof(v4l2Buffer{}))
	vidiocQbuf      = vidioc(iocRead|iocWrite, 15, unsafe.Sizeof(v4l2Buffer{}))
	vidiocDqbuf     = vidioc(iocRead|iocWrite, 17, unsafe.Sizeof(v4l2Buffer{}))
	vidiocStreamon  = vidioc(iocWrite, 18, unsafe.Sizeof(int32(0)))
	vidiocStreamoff = vidioc(iocWrite, 19, unsafe.Sizeof(int32(0)))
	vidiocSParm     = vidioc(iocRead|iocWrite, 22, unsafe.Sizeof(v4l2Streamparm{}))
)

const (
	bufTypeVideoCapture = 1
	memoryMmap          = 1
	fieldNone           = 1
	capVideoCapture     = 0x00000001
	capStreaming        = 0x04000000
	capDeviceCaps       = 0x80000000
)

// Pixel formats (fourcc).
const (
	pixYUYV  = 'Y' | 'U'<<8 | 'Y'<<16 | 'V'<<24
	pixMJPEG = 'M' | 'J'<<8 | 'P'<<16 | 'G'<<24
	pixGREY  = 'G' | 'R'<<8 | 'E'<<16 | 'Y'<<24
)

type v4l2Capability struct { // 104 bytes
	Driver       [16]byte
	Card         [32]byte
	BusInfo      [32]byte
	Version      uint32
	Capabilities uint32
	DeviceCaps   uint32
	Reserved     [3]uint32
}

type v4l2Fmtdesc struct { // 64 bytes
	Index       uint32
	Type        uint32
	Flags       uint32
	Description [32]byte
	PixelFormat uint32
	MbusCode    uint32
	Reserved    [3]uint32
}

type v4l2PixFormat struct { // 48 bytes
	Width, Height, PixelFormat, Field, BytesPerLine, SizeImage uint32
	Colorspace, Priv, Flags, YcbcrEnc, Quantization, XferFunc  uint32
}

// v4l2Format's union holds pointers (struct v4l2_window), so it is pointer-aligned: 208
// bytes on 64-bit, 204 on 32-bit.
type v4l2Format struct {
	Type uint32
	Fmt  struct {
		_   [0]uintptr
		Raw [200]byte
	}
}

func (f *v4l2Format) pix() *v4l2PixFormat { return (*v4l2PixFormat)(unsafe.Pointer(&f.Fmt.Raw[0])) }

type v4l2RequestBuffers struct { // 20 bytes
	Count, Type, Memory, Capabilities uint32
	Flags                             uint8
	Reserved                          [3]uint8
}

// v4l2Buffer: 88 bytes on 64-bit, 68 on 32-bit (a 32-bit timeval; the kernel's
// VIDIOC_*_TIME32 numbers are these).
type v4l2Buffer struct {
	Index, Type, BytesUsed, Flags, Field uint32
	Timestamp                            unix.Timeval
	Timecode                             [16]byte
	Sequence, Memory                     uint32
	M                                    uintptr // union: offset (mmap), userptr, planes, fd
	Length, Reserved2, RequestFD         uint32
}

type v4l2Streamparm struct { // 204 bytes
	Type    uint32
	Capture struct {
		Capability, CaptureMode   uint32
		TimePerFrame              struct{ Numerator, Denominator uint32 }
		ExtendedMode, ReadBuffers uint32
		Reserved                  [4]uint32
	}
	_ [200 - 40]byte
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		switch e {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return e
	}
}

// v4l2Device is one open capture node, streaming.
type v4l2Device struct {
	name   string
	fd     int
	bufs   [][]byte
	format uint32
	width  int
	height int
	stride int
}

const v4l2Buffers = 4

// openDevice opens path, chooses a format (YUYV, then GREY, then MJPEG, at the size
// closest to what opts asks) and starts streaming.
func openDevice(path string, opts Options) (d *v4l2Device, err error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("%w (cameras belong to the video group: usermod -aG video posagent)", &os.PathError{Op: "open", Path: path, Err: err})
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	d = &v4l2Device{name: path, fd: fd}
	defer func() {
		if err != nil {
			d.close()
			d = nil
		}
	}()
	var cp v4l2Capability
	if err := ioctl(fd, vidiocQuerycap, unsafe.Pointer(&cp)); err != nil {
		return nil, fmt.Errorf("%s is not a V4L2 device: %w", path, err)
	}
	caps := cp.Capabilities
	if caps&capDeviceCaps != 0 {
		caps = cp.DeviceCaps
	}
	if caps&capVideoCapture == 0 || caps&capStreaming == 0 {
		return nil, posagent.Invalidf("%s (%s) is not a streaming video capture device", path, cstr(cp.Card[:]))
	}
	formats := map[uint32]bool{}
	for i := uint32(0); i < 64; i++ {
		fd := v4l2Fmtdesc{Index: i, Type: bufTypeVideoCapture}
		if ioctl(d.fd, vidiocEnumFmt, unsafe.Pointer(&fd)) != nil {
			break
		}
		formats[fd.PixelFormat] = true
	}
	pf := uint32(0)
	for _, f := range []uint32{pixYUYV, pixGREY, pixMJPEG} {
		if formats[f] {
			pf = f
			break
		}
	}
	if pf == 0 {
		return nil, posagent.Invalidf("%s offers neither YUYV, GREY nor MJPEG frames", path)
	}
	var f v4l2Format
	f.Type = bufTypeVideoCapture
	p := f.pix()
	p.Width, p.Height, p.PixelFormat, p.Field = uint32(opts.Width), uint32(opts.Height), pf, fieldNone
	if err := ioctl(d.fd, vidiocSFmt, unsafe.Pointer(&f)); err != nil {
		return nil, fmt.Errorf("set format: %w", err)
	}
	d.format, d.width, d.height, d.stride = p.PixelFormat, int(p.Width), int(p.Height), int(p.BytesPerLine)
	if d.format != pf {
		return nil, fmt.Errorf("set format: the driver chose %s", fourcc(d.format))
	}
	sp := v4l2Streamparm{Type: bufTypeVideoCapture}
	sp.Capture.TimePerFrame.Numerator, sp.Capture.TimePerFrame.Denominator = 1000, uint32(opts.FPS*1000)
	ioctl(d.fd, vidiocSParm, unsafe.Pointer(&sp)) // best effort: some cameras have one rate

	rb := v4l2RequestBuffers{Count: v4l2Buffers, Type: bufTypeVideoCapture, Memory: memoryMmap}
	if err := ioctl(d.fd, vidiocReqbufs, unsafe.Pointer(&rb)); err != nil {
		return nil, fmt.Errorf("request buffers: %w", err)
	}
	for i := uint32(0); i < rb.Count; i++ {
		b := v4l2Buffer{Index: i, Type: bufTypeVideoCapture, Memory: memoryMmap}
		if err := ioctl(d.fd, vidiocQuerybuf, unsafe.Pointer(&b)); err != nil {
			return nil, fmt.Errorf("query buffer: %w", err)
		}
		m, err := unix.Mmap(d.fd, int64(uint32(b.M)), int(b.Length), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return nil, fmt.Errorf("map buffer: %w", err)
		}
		d.bufs = append(d.bufs, m)
		if err := ioctl(d.fd, vidiocQbuf, unsafe.Pointer(&b)); err != nil {
			return nil, fmt.Errorf("queue buffer: %w", err)
		}
	}
	typ := int32(bufTypeVideoCapture)
	if err := ioctl(d.fd, vidiocStreamon, unsafe.Pointer(&typ)); err != nil {
		return nil, fmt.Errorf("stream on: %w", err)
	}
	return d, nil
}

// frame waits up to timeout for a frame and returns it as an image (a copy: the buffer
// goes back to the driver). It returns nil, nil when no frame came in time.
func (d *v4l2Device) frame(timeout time.Duration) (image.Image, time.Time, error) {
	pfd := []unix.PollFd{{Fd: int32(d.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, int(timeout/time.Millisecond))
	if err != nil && err != unix.EINTR {
		return nil, time.Time{}, err
	}
	if n == 0 || err == unix.EINTR {
		return nil, time.Time{}, nil
	}
	if pfd[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 && pfd[0].Revents&unix.POLLIN == 0 {
		return nil, time.Time{}, unix.ENODEV
	}
	b := v4l2Buffer{Type: bufTypeVideoCapture, Memory: memoryMmap}
	if err := ioctl(d.fd, vidiocDqbuf, unsafe.Pointer(&b)); err != nil {
		if err == unix.EAGAIN {
			return nil, time.Time{}, nil
		}
		return nil, time.Time{}, err
	}
	at := time.Now()
	var img image.Image
	var ferr error
	if int(b.Index) < len(d.bufs) {
		data := d.bufs[b.Index]
		img, ferr = d.toImage(data[:min(int(b.BytesUsed), len(data))])
	}
	if err := ioctl(d.fd, vidiocQbuf, unsafe.Pointer(&b)); err != nil {
		return nil, time.Time{}, err
	}
	if ferr != nil {
		return nil, time.Time{}, posagent.Invalidf("bad frame: %v", ferr)
	}
	return img, at, nil
}

// toImage copies the luminance of a frame.
func (d *v4l2Device) toImage(data []byte) (image.Image, error) {
	switch d.format {
	case pixMJPEG:
		return jpeg.Decode(bytes.NewReader(data))
	case pixYUYV:
		return yuyvToGray(data, d.width, d.height, d.stride)
	case pixGREY:
		return greyToGray(data, d.width, d.height, d.stride)
	}
	return nil, fmt.Errorf("format %s", fourcc(d.format))
}

func (d *v4l2Device) close() {
	typ := int32(bufTypeVideoCapture)
	ioctl(d.fd, vidiocStreamoff, unsafe.Pointer(&typ))
	for _, b := range d.bufs {
		unix.Munmap(b)
	}
	d.bufs = nil
	unix.Close(d.fd)
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// V4L2 is a camera source that reopens its device when it comes back after an unplug.
type V4L2 struct {
	loc  Device
	opts Options

	mu   sync.Mutex // held by Next
	dev  *v4l2Device
	done chan struct{}
	once sync.Once
	warn string // the last open error reported, to report each once
}

func openV4L2(loc Device, opts Options) (Source, error) {
	if opts.Width <= 0 || opts.Height <= 0 {
		opts.Width, opts.Height = 640, 480
	}
	return &V4L2{loc: loc, opts: opts, done: make(chan struct{})}, nil
}

// retryEvery is how often a missing or failed camera is looked for again.
const retryEvery = time.Second

// Next returns the next frame, (re)opening the camera as needed: while it is away Next
// waits. Errors that another attempt would not cure (not a capture device, no usable
// format) are returned, wrapping posagent.ErrInvalidInput.
func (c *V4L2) Next(ctx context.Context) (Image, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		select {
		case <-c.done:
			return Image{}, ErrClosed
		case <-ctx.Done():
			return Image{}, ctx.Err()
		default:
		}
		if c.dev == nil {
			path, err := c.loc.resolve()
			if err == nil {
				c.dev, err = openDevice(path, c.opts)
			}
			if err != nil {
				if errors.Is(err, posagent.ErrInvalidInput) && c.loc.Path != "" {
					return Image{}, wrap(c.loc.String(), err)
				}
				if msg := err.Error(); msg != c.warn {
					c.warn = msg
					c.event(Event{Name: c.loc.String(), Err: err})
				}
				if err := c.wait(ctx, retryEvery); err != nil {
					return Image{}, err
				}
				continue
			}
			c.warn = ""
			c.event(Event{Connected: true, Name: c.dev.name})
		}
		img, at, err := c.dev.frame(200 * time.Millisecond)
		switch {
		case err == nil && img != nil:
			return Image{Image: img, At: at}, nil
		case err == nil:
			continue // nothing yet: look at ctx and done again
		case errors.Is(err, posagent.ErrInvalidInput):
			return Image{}, wrap(c.dev.name, err) // one corrupt frame: the caller skips it
		}
		// Unplugged (ENODEV) or broken: close, and open again when it is back.
		name := c.dev.name
		c.dev.close()
		c.dev = nil
		c.warn = err.Error()
		c.event(Event{Name: name, Err: err})
	}
}

func (c *V4L2) event(ev Event) {
	if c.opts.OnEvent != nil {
		c.opts.OnEvent(ev)
	}
}

func (c *V4L2) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// Close stops the camera. A blocked Next returns ErrClosed within its poll interval.
func (c *V4L2) Close() error {
	c.once.Do(func() { close(c.done) })
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dev != nil {
		c.dev.close()
		c.dev = nil
	}
	return nil
}

// SysfsDir is where video4linux devices are listed; a variable for tests.
var SysfsDir = "/sys/class/video4linux"

// resolve returns the device node: the path, or the first capture node of the USB camera
// with the locator's VID:PID (a UVC camera has a second node for metadata; the capture
// node is the one with the lowest index).
func (l Device) resolve() (string, error) {
	if l.Path != "" {
		return l.Path, nil
	}
	return findVIDPID(SysfsDir, l.VID, l.PID)
}

// findVIDPID looks through sysfs (dir/videoN/device/../idVendor) for the USB camera with
// that VID:PID and returns its first node, /dev/videoN. It only reads small sysfs
// attributes; which node streams is left to openDevice.
func findVIDPID(dir, vid, pid string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("list cameras: %w", err)
	}
	best, bestN := "", -1
	for _, e := range entries {
		var n int
		if _, err := fmt.Sscanf(e.Name(), "video%d", &n); err != nil {
			continue
		}
		// device links to the USB interface; its parent is the USB device.
		intf, err := filepath.EvalSymlinks(filepath.Join(dir, e.Name(), "device"))
		if err != nil {
			continue
		}
		usb := filepath.Dir(intf)
		v, err1 := os.ReadFile(filepath.Join(usb, "idVendor"))
		p, err2 := os.ReadFile(filepath.Join(usb, "idProduct"))
		if err1 != nil || err2 != nil {
			continue
		}
		if strings.EqualFold(strings.TrimSpace(string(v)), vid) && strings.EqualFold(strings.TrimSpace(string(p)), pid) &&
			(bestN < 0 || n < bestN) {
			best, bestN = e.Name(), n
		}
	}
	if best == "" {
		return "", fmt.Errorf("no camera %s:%s is connected: %w", vid, pid, os.ErrNotExist)
	}
	return "/dev/" + best, nil
}

// Present reports (nil) whether the camera loc names is attached now: its device node
// exists, or a USB camera with its VID:PID is in sysfs. The agent waits for an absent
// camera; a command asks first, to say at once that none is plugged in.
func Present(loc Device) error {
	path, err := loc.resolve()
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return nil
}
