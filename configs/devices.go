package configs

import _ "embed"

// Devices is the device table of 'posagent ports' (devices.yaml): known scanners (serial
// and keyboard mode), printers (serial and USB printer class), displays and USB-serial
// adapters by USB vendor and product ID.
//
//go:embed devices.yaml
var Devices []byte
