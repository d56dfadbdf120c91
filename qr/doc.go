// Package qr is the terminal's unified QR codec: one counter, any wallet.
//
// It reads and writes EMVCo merchant-presented codes (MPM: ParseMPM, BuildMPM), decodes and
// encodes EMVCo consumer-presented codes (CPM: DecodeCPM, EncodeCPM), tells every code a
// scanner may deliver apart (Classifier), renders codes for the display and the printer
// (Encode: PNG, ASCII, 1-bit raster) and reads them back from camera frames (DecodeImage).
//
// Errors from the parsers are *ParseError values that name the data object, the offset and
// the rule broken; they wrap ErrMalformed, ErrCRC or ErrRule so callers can branch with
// errors.Is, and all of them also match posagent.ErrInvalidInput.
package qr
