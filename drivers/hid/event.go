package hid

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout is the size of struct input_event on one platform: a struct timeval (two longs)
// then type u16, code u16, value s32, in the machine's byte order (little-endian on every
// platform posagent runs on).
type Layout struct {
	// TimeSize is the size of struct timeval: 16 on 64-bit platforms, 8 on 32-bit ARM.
	TimeSize int
}

// The layouts of the terminals' platforms.
var (
	Layout64    = Layout{TimeSize: 16} // arm64, amd64: 24-byte events
	LayoutARM32 = Layout{TimeSize: 8}  // 32-bit ARM: 16-byte events
)

// NativeLayout is this platform's layout, from the size of its struct timeval.
var NativeLayout = Layout{TimeSize: int(unsafe.Sizeof(unix.Timeval{}))}

// Size is the size of one event.
func (l Layout) Size() int { return l.TimeSize + 8 }

// Event types and codes (linux/input-event-codes.h) the decoder uses.
const (
	EvSyn = 0x00
	EvKey = 0x01
	EvMsc = 0x04

	KeyReleased = 0
	KeyPressed  = 1
	KeyRepeated = 2
)

// Event is one struct input_event without its time stamp.
type Event struct {
	Type  uint16
	Code  uint16
	Value int32
}

func (e Event) String() string {
	return fmt.Sprintf("type %d code %d value %d", e.Type, e.Code, e.Value)
}

// DecodeEvents decodes the whole events at the start of data in layout l and returns them
// with the number of bytes they took; a partial event at the end is left for the next
// call (rest = data[n:]). It never fails: any bytes are some events.
func DecodeEvents(l Layout, data []byte) (events []Event, n int) {
	size := l.Size()
	for n+size <= len(data) {
		e := data[n+l.TimeSize : n+size]
		events = append(events, Event{
			Type:  binary.LittleEndian.Uint16(e[0:2]),
			Code:  binary.LittleEndian.Uint16(e[2:4]),
			Value: int32(binary.LittleEndian.Uint32(e[4:8])),
		})
		n += size
	}
	return events, n
}

// EncodeEvent appends ev in layout l (time stamp zero): for tests and simulators.
func EncodeEvent(l Layout, b []byte, ev Event) []byte {
	b = append(b, make([]byte, l.TimeSize)...)
	b = binary.LittleEndian.AppendUint16(b, ev.Type)
	b = binary.LittleEndian.AppendUint16(b, ev.Code)
	return binary.LittleEndian.AppendUint32(b, uint32(ev.Value))
}
