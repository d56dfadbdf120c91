// Package update is the signed-update path of the agent: the bundle format (a manifest, its
// ed25519 signature and the binary), the vendor's keys and the terminal's trusted ones, the
// checks a bundle must pass, and the install, switch and rollback over a directory layout:
//
//	ROOT/versions/<version>/posagent   every installed version, beside each other
//	ROOT/current -> versions/<version> what the service runs (ROOT/current/posagent)
//	ROOT/previous -> versions/<v>      the version before it
//	ROOT/update-state.json             what the last apply did, so a crash is resolved
//
// The journal is not in the layout and nothing here opens it.
package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// Refusals: every reason a bundle is refused wraps one of these.
var (
	ErrFormat       = errors.New("not an update bundle")
	ErrTruncated    = errors.New("bundle truncated or tampered")
	ErrBadSignature = errors.New("bad signature")
	ErrUnknownKey   = errors.New("unknown signing key")
	ErrDigest       = errors.New("binary digest mismatch")
	ErrArch         = errors.New("wrong architecture")
	ErrDowngrade    = errors.New("not newer than the running version")
)

// IsRefusal reports whether err is a bundle refused by Verify (or Apply's own check that
// it is not the current version), as opposed to a failure to read or install it.
func IsRefusal(err error) bool {
	for _, e := range []error{ErrFormat, ErrTruncated, ErrBadSignature, ErrUnknownKey, ErrDigest, ErrArch, ErrDowngrade} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Arches are the architectures a bundle may be built for.
var Arches = []string{"amd64", "arm64", "armv7"}

// Manifest describes the binary of a bundle; it is what the signature covers, and it binds
// the binary by its SHA-256 digest and size.
type Manifest struct {
	Format  int       `json:"format"`
	Version string    `json:"version"`
	Arch    string    `json:"arch"`
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	KeyID   string    `json:"key_id"`
	Created time.Time `json:"created"`
}

// formatVersion is Manifest.Format for this layout of bundle.
const formatVersion = 1

// canonical is the manifest's signed encoding: compact JSON, fields in declaration order,
// the time in UTC with whole seconds.
func (m Manifest) canonical() ([]byte, error) {
	m.Created = m.Created.UTC().Truncate(time.Second)
	return json.Marshal(m)
}

// parseManifest decodes a signed manifest and insists that it is in canonical form, so the
// bytes that were signed are the only encoding of what they say.
func parseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: manifest: %v", ErrFormat, err)
	}
	c, err := m.canonical()
	if err != nil || !bytes.Equal(c, b) {
		return Manifest{}, fmt.Errorf("%w: manifest is not in canonical form", ErrFormat)
	}
	if m.Format != formatVersion {
		return Manifest{}, fmt.Errorf("%w: manifest format %d, this posagent reads %d", ErrFormat, m.Format, formatVersion)
	}
	return m, nil
}

// CheckArch reports whether arch is one a bundle can be built for.
func CheckArch(arch string) error {
	for _, a := range Arches {
		if a == arch {
			return nil
		}
	}
	return fmt.Errorf("architecture %q: want one of %s", arch, strings.Join(Arches, ", "))
}

// RuntimeArch is the architecture of the running binary as bundles name it: amd64, arm64,
// armv7 (GOARCH=arm with GOARM=7), else GOARCH itself (with the GOARM level for arm).
func RuntimeArch() string {
	if runtime.GOARCH != "arm" {
		return runtime.GOARCH
	}
	goarm := "7"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "GOARM" && s.Value != "" {
				goarm = s.Value
			}
		}
	}
	return "armv" + strings.SplitN(goarm, ",", 2)[0]
}

var versionRE = regexp.MustCompile(`^v?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*)){0,2}(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// CheckVersion reports whether v is a version an update can carry: semver-like, MAJOR[.MINOR[.PATCH]]
// with an optional -prerelease and +build, an optional leading "v".
func CheckVersion(v string) error {
	if !versionRE.MatchString(v) {
		return fmt.Errorf("version %q: want MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], e.g. 1.4.2", v)
	}
	return nil
}

// CompareVersions compares two versions semver-like: numbers part by part (missing parts are
// 0), a prerelease before its release, prereleases identifier by identifier; build metadata
// and a leading "v" are ignored. ok is false when either is not a version.
func CompareVersions(a, b string) (cmp int, ok bool) {
	if CheckVersion(a) != nil || CheckVersion(b) != nil {
		return 0, false
	}
	pa, pb := splitVersion(a), splitVersion(b)
	for i := 0; i < 3; i++ {
		if c := compareNum(pa.nums[i], pb.nums[i]); c != 0 {
			return c, true
		}
	}
	switch {
	case pa.pre == "" && pb.pre == "":
		return 0, true
	case pa.pre == "":
		return 1, true
	case pb.pre == "":
		return -1, true
	}
	ia, ib := strings.Split(pa.pre, "."), strings.Split(pb.pre, ".")
	for i := 0; i < len(ia) && i < len(ib); i++ {
		na, ea := strconv.ParseUint(ia[i], 10, 64)
		nb, eb := strconv.ParseUint(ib[i], 10, 64)
		switch {
		case ea == nil && eb == nil:
			if c := compareNum(na, nb); c != 0 {
				return c, true
			}
		case ea == nil:
			return -1, true
		case eb == nil:
			return 1, true
		default:
			if c := strings.Compare(ia[i], ib[i]); c != 0 {
				return c, true
			}
		}
	}
	return compareNum(uint64(len(ia)), uint64(len(ib))), true
}

// compareReleases is CompareVersions, with one refinement for builds between tags: when
// the versions are equal but for build metadata, and both builds are "gitN…" (commits since
// the tag, as packaging/version.sh stamps them), the one with more commits is newer.
func compareReleases(a, b string) (int, bool) {
	c, ok := CompareVersions(a, b)
	if !ok || c != 0 {
		return c, ok
	}
	na, oka := gitCommits(a)
	nb, okb := gitCommits(b)
	if oka && okb {
		return compareNum(na, nb), true
	}
	return 0, true
}

var gitBuildRE = regexp.MustCompile(`\+git([0-9]+)(\.|$)`)

func gitCommits(v string) (uint64, bool) {
	m := gitBuildRE.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseUint(m[1], 10, 64)
	return n, err == nil
}

// sameVersion reports whether an agent that says it is got runs the version want was signed
// as: equal but for a leading "v", or, when want carries no build metadata, equal to got
// without its build metadata.
func sameVersion(got, want string) bool {
	got, want = strings.TrimPrefix(got, "v"), strings.TrimPrefix(want, "v")
	if got == want {
		return true
	}
	base, _, _ := strings.Cut(got, "+")
	return !strings.Contains(want, "+") && base == want
}

type version struct {
	nums [3]uint64
	pre  string
}

func splitVersion(s string) version {
	s = strings.TrimPrefix(s, "v")
	s, _, _ = strings.Cut(s, "+")
	var v version
	s, v.pre, _ = strings.Cut(s, "-")
	for i, p := range strings.Split(s, ".") {
		v.nums[i], _ = strconv.ParseUint(p, 10, 64)
	}
	return v
}

func compareNum(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
