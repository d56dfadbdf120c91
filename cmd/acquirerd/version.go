package main

import "runtime/debug"

// version is set at build time with -ldflags "-X main.version=v1.2.3"; without it the
// module version and VCS revision from the build info are used.
var version = ""

// Version is the build's version: the -X main.version value, else the build info's, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	v := info.Main.Version
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += "+" + s.Value[:12]
		}
	}
	return v
}
