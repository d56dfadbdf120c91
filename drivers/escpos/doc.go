// Package escpos drives ESC/POS receipt printers: an encoder (commands as functions,
// EncodeReceipt for a posagent.Receipt), printer profiles (data in configs/printers,
// LoadProfile), the receipt layout (Layout: CJK two columns wide in Chinese mode, long
// names wrapped, amounts aligned right) and the Printer driver over a small Port
// interface, which checks the status with DLE EOT 1/2/4 before and after each job and
// writes in chunks paced to the line rate.
//
// Text goes to the printer as the printer prints it: in Chinese mode (FS &) non-ASCII
// characters are double-byte GB18030 and take two columns; outside it, bytes of the
// profile's code page (ESC t). QR codes are native (GS ( k) when the profile has it and
// the payload is ASCII, else raster images (GS v 0) in bands.
package escpos
