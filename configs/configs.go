// Package configs holds the data files the binaries carry: printer profiles today (and
// example configs and device tables as they arrive). The files are embedded so that a
// terminal works without them on disk; drivers read them through the fs.FS values here,
// and a directory on disk can override them (see escpos.LoadProfile).
package configs

import "embed"

// Printers holds the printer profiles, printers/NAME.json, one file per profile.
//
//go:embed printers/*.json
var Printers embed.FS
