package qr

// crcTable is the lookup table for CRC-16/CCITT-FALSE (polynomial 0x1021, MSB first).
var crcTable = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC16 returns the CRC-16/CCITT-FALSE of b (polynomial 0x1021, initial value 0xFFFF, no
// reflection, no final XOR): the checksum of EMV MPM tag 63. For a payload it is computed
// over the UTF-8 bytes of everything up to and including "6304".
func CRC16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc = crc<<8 ^ crcTable[byte(crc>>8)^x]
	}
	return crc
}

const hexUpper = "0123456789ABCDEF"

// crcHex formats a CRC as the four uppercase hex digits tag 63 carries.
func crcHex(c uint16) string {
	return string([]byte{hexUpper[c>>12], hexUpper[c>>8&0xF], hexUpper[c>>4&0xF], hexUpper[c&0xF]})
}
