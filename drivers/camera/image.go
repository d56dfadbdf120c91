package camera

import (
	"fmt"
	"image"
)

// The frame layouts a camera delivers, as luminance images. These are pure functions of
// bytes, shared by the V4L2 layer and its tests on every platform.

// yuyvToGray takes the Y samples of a packed YUYV (YUV 4:2:2) frame: every other byte.
// stride is the bytes per line (0 means 2·w).
func yuyvToGray(data []byte, w, h, stride int) (*image.Gray, error) {
	if stride == 0 {
		stride = 2 * w
	}
	if w <= 0 || h <= 0 || stride < 2*w || len(data) < stride*(h-1)+2*w {
		return nil, fmt.Errorf("YUYV frame of %d bytes is too short for %d×%d (stride %d)", len(data), w, h, stride)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		row := data[y*stride : y*stride+2*w]
		dst := g.Pix[y*w : (y+1)*w]
		for x := range dst {
			dst[x] = row[2*x]
		}
	}
	return g, nil
}

// greyToGray copies an 8-bit greyscale frame. stride is the bytes per line (0 means w).
func greyToGray(data []byte, w, h, stride int) (*image.Gray, error) {
	if stride == 0 {
		stride = w
	}
	if w <= 0 || h <= 0 || stride < w || len(data) < stride*(h-1)+w {
		return nil, fmt.Errorf("GREY frame of %d bytes is too short for %d×%d (stride %d)", len(data), w, h, stride)
	}
	g := image.NewGray(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		copy(g.Pix[y*w:(y+1)*w], data[y*stride:])
	}
	return g, nil
}

// fourcc spells a V4L2 pixel format.
func fourcc(f uint32) string {
	return string([]byte{byte(f), byte(f >> 8), byte(f >> 16), byte(f >> 24)})
}
