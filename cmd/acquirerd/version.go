package main

import "github.com/posagent/posagent/internal/buildinfo"

// version is set at build time with -ldflags "-X main.version=v1.2.3"; without it the
// module version and VCS revision from the build info are used.
var version = ""

// Version is the build's version (see buildinfo.Version).
func Version() string { return buildinfo.Version(version) }
