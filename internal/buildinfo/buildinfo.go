// Package buildinfo names the running build for the binaries' --version.
package buildinfo

import "runtime/debug"

// Version is stamped, the -X main.version value, when set; else the module version and
// VCS revision from the build info; else "devel".
func Version(stamped string) string {
	if stamped != "" {
		return stamped
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
