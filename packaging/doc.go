// Package packaging holds what `make deb` puts around the binaries: the nfpm configs
// (posagent.nfpm.yaml, acquirerd.nfpm.yaml), the systemd units, the sysusers.d files, the
// maintainer scripts shared by both packages (scripts/) and the Debian version from git
// (version.sh). Its tests check the built packages with dpkg-deb, install them into a
// scratch root with dpkg and verify the units with systemd-analyze. It has no non-test code.
package packaging
