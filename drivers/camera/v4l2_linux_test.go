package camera

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"
)

// TestV4L2StructSizes checks the structs and ioctl numbers against <linux/videodev2.h>
// for the architecture under test: 64-bit (amd64, arm64) or 32-bit (ARMv7, under qemu
// in make test-arm).
func TestV4L2StructSizes(t *testing.T) {
	is64 := unsafe.Sizeof(uintptr(0)) == 8
	pick := func(b64, b32 uintptr) uintptr {
		if is64 {
			return b64
		}
		return b32
	}
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"v4l2_capability", unsafe.Sizeof(v4l2Capability{}), 104},
		{"v4l2_fmtdesc", unsafe.Sizeof(v4l2Fmtdesc{}), 64},
		{"v4l2_pix_format", unsafe.Sizeof(v4l2PixFormat{}), 48},
		{"v4l2_format", unsafe.Sizeof(v4l2Format{}), pick(208, 204)},
		{"v4l2_requestbuffers", unsafe.Sizeof(v4l2RequestBuffers{}), 20},
		{"v4l2_buffer", unsafe.Sizeof(v4l2Buffer{}), pick(88, 68)},
		{"v4l2_streamparm", unsafe.Sizeof(v4l2Streamparm{}), 204},
	}
	for _, s := range sizes {
		if s.got != s.want {
			t.Errorf("sizeof(%s) = %d, want %d", s.name, s.got, s.want)
		}
	}
	// Offsets the kernel reads in v4l2_buffer: m.offset and length.
	var b v4l2Buffer
	if got, want := unsafe.Offsetof(b.M), pick(64, 52); got != want {
		t.Errorf("offsetof(v4l2_buffer.m) = %d, want %d", got, want)
	}
	if got, want := unsafe.Offsetof(b.Length), pick(72, 56); got != want {
		t.Errorf("offsetof(v4l2_buffer.length) = %d, want %d", got, want)
	}
	var f v4l2Format
	if got, want := unsafe.Offsetof(f.Fmt), pick(8, 4); got != want {
		t.Errorf("offsetof(v4l2_format.fmt) = %d, want %d", got, want)
	}
	// The numbers as the C headers give them.
	nums := []struct {
		name      string
		got, want uintptr
	}{
		{"VIDIOC_QUERYCAP", vidiocQuerycap, 0x80685600},
		{"VIDIOC_ENUM_FMT", vidiocEnumFmt, 0xc0405602},
		{"VIDIOC_S_FMT", vidiocSFmt, pick(0xc0d05605, 0xc0cc5605)},
		{"VIDIOC_REQBUFS", vidiocReqbufs, 0xc0145608},
		{"VIDIOC_QUERYBUF", vidiocQuerybuf, pick(0xc0585609, 0xc0445609)},
		{"VIDIOC_QBUF", vidiocQbuf, pick(0xc058560f, 0xc044560f)},
		{"VIDIOC_DQBUF", vidiocDqbuf, pick(0xc0585611, 0xc0445611)},
		{"VIDIOC_STREAMON", vidiocStreamon, 0x40045612},
		{"VIDIOC_STREAMOFF", vidiocStreamoff, 0x40045613},
		{"VIDIOC_S_PARM", vidiocSParm, 0xc0cc5616},
	}
	for _, n := range nums {
		if n.got != n.want {
			t.Errorf("%s = %#x, want %#x", n.name, n.got, n.want)
		}
	}
}

// TestFindVIDPID finds a camera by USB IDs in a sysfs-like tree: videoN/device links to
// the USB interface, whose parent holds idVendor and idProduct.
func TestFindVIDPID(t *testing.T) {
	root := t.TempDir()
	class := filepath.Join(root, "class")
	mk := func(video, usbdev, vid, pid string) {
		intf := filepath.Join(root, "devices", usbdev, usbdev+":1.0")
		if err := os.MkdirAll(intf, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, "devices", usbdev, "idVendor"), []byte(vid+"\n"), 0o644)
		os.WriteFile(filepath.Join(root, "devices", usbdev, "idProduct"), []byte(pid+"\n"), 0o644)
		if err := os.MkdirAll(filepath.Join(class, video), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(intf, filepath.Join(class, video, "device")); err != nil {
			t.Fatal(err)
		}
	}
	mk("video0", "1-1", "046d", "0825") // a webcam: capture and metadata nodes
	mk("video1", "1-1", "046d", "0825")
	mk("video2", "1-2", "1d6b", "0102") // the scanner camera
	mk("video3", "1-2", "1d6b", "0102")
	tests := []struct {
		vid, pid, want string
		ok             bool
	}{
		{"046d", "0825", "/dev/video0", true},
		{"1D6B", "0102", "/dev/video2", true},
		{"ffff", "0001", "", false},
	}
	for _, tt := range tests {
		got, err := findVIDPID(class, tt.vid, tt.pid)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("findVIDPID(%s:%s) = %q, %v; want %q", tt.vid, tt.pid, got, err, tt.want)
		}
	}
}

// TestV4L2_Device reads frames from a real camera. It needs a V4L2 capture device:
// POSAGENT_CAMERA=/dev/videoN names one; without it the test skips.
func TestV4L2_Device(t *testing.T) {
	dev := os.Getenv("POSAGENT_CAMERA")
	if dev == "" {
		t.Skip("needs a V4L2 capture device (a USB UVC camera): set POSAGENT_CAMERA=/dev/videoN")
	}
	src, err := Open("camera:"+dev, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i < 5; i++ {
		img, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b := img.Image.Bounds(); b.Dx() < 160 || b.Dy() < 120 {
			t.Errorf("frame %d is %v", i, b)
		}
	}
}
