package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func testKey(t *testing.T) (ed25519.PrivateKey, Keyring) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv, Keyring{KeyID(pub): pub}
}

var created = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

func TestSign_Verify(t *testing.T) {
	priv, keys := testKey(t)
	bin := []byte("\x7fELF a binary")
	b, m, err := Sign(priv, "1.4.2", "arm64", bin, created)
	if err != nil {
		t.Fatal(err)
	}
	bd, err := Verify(b, keys, Policy{Arch: "arm64", Running: "1.4.1"})
	if err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if got, want := bd.Manifest, m; got != want {
		t.Errorf("manifest = %+v, want %+v", got, want)
	}
	if !bytes.Equal(bd.Binary, bin) {
		t.Errorf("binary = %q, want %q", bd.Binary, bin)
	}
	if got, want := m.KeyID, keys.IDs()[0]; got != want || len(got) != 16 {
		t.Errorf("key id = %q, want %q (16 hex digits)", got, want)
	}
}

func TestVerify_Refusals(t *testing.T) {
	priv, keys := testKey(t)
	other, otherKeys := testKey(t)
	bin := bytes.Repeat([]byte("posagent"), 100)
	good, _, err := Sign(priv, "2.0.0", "armv7", bin, created)
	if err != nil {
		t.Fatal(err)
	}
	byOther, _, _ := Sign(other, "2.0.0", "armv7", bin, created)
	hdr := len(magic) + 4
	manifestEnd := len(good) - len(bin) - ed25519.SignatureSize
	edit := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// a manifest whose fields differ from the binary's, signed by the trusted key
	lying := func() []byte {
		b, _, _ := Sign(priv, "2.0.0", "armv7", []byte("another binary"), created)
		return append(b[:len(b)-len("another binary")], bin[:len("another binary")]...)
	}()
	pol := Policy{Arch: "armv7", Running: "1.9.3"}
	tests := []struct {
		name   string
		bundle []byte
		keys   Keyring
		policy Policy
		want   error
	}{
		{"empty file", nil, keys, pol, ErrTruncated},
		{"not a bundle", []byte("#!/bin/sh\necho hi\n"), keys, pol, ErrFormat},
		{"cut in the header", good[:len(magic)+2], keys, pol, ErrTruncated},
		{"cut in the manifest", good[:hdr+10], keys, pol, ErrTruncated},
		{"cut in the signature", good[:manifestEnd+30], keys, pol, ErrTruncated},
		{"cut in the binary", good[:len(good)-1], keys, pol, ErrTruncated},
		{"bytes appended", append(bytes.Clone(good), 0), keys, pol, ErrTruncated},
		{"binary byte flipped", edit(func(b []byte) []byte { b[len(b)-5] ^= 1; return b }), keys, pol, ErrDigest},
		{"binary swapped, same size", lying, keys, pol, ErrDigest},
		{"signature byte flipped", edit(func(b []byte) []byte { b[manifestEnd+3] ^= 1; return b }), keys, pol, ErrBadSignature},
		{"manifest version edited", edit(func(b []byte) []byte { return bytes.Replace(b, []byte(`"2.0.0"`), []byte(`"3.0.0"`), 1) }), keys, pol, ErrBadSignature},
		{"manifest arch edited", edit(func(b []byte) []byte { return bytes.Replace(b, []byte(`"armv7"`), []byte(`"arm64"`), 1) }), keys, Policy{Arch: "arm64", Running: "1.0.0"}, ErrBadSignature},
		{"manifest not canonical", edit(func(b []byte) []byte { return bytes.Replace(b, []byte(`{"format"`), []byte(`{ "format"`), 1) }), keys, pol, ErrFormat},
		{"unknown key", byOther, keys, pol, ErrUnknownKey},
		{"rotated out: only the new key trusted", good, otherKeys, pol, ErrUnknownKey},
		{"wrong architecture", good, keys, Policy{Arch: "arm64", Running: "1.0.0"}, ErrArch},
		{"older version", good, keys, Policy{Arch: "armv7", Running: "2.1.0"}, ErrDowngrade},
		{"same version", good, keys, Policy{Arch: "armv7", Running: "v2.0.0"}, ErrDowngrade},
		{"prerelease running is older", good, keys, Policy{Arch: "armv7", Running: "2.0.0-rc.1"}, nil},
		{"downgrade allowed", good, keys, Policy{Arch: "armv7", Running: "2.1.0", AllowDowngrade: true}, nil},
		{"running devel build: not compared", good, keys, Policy{Arch: "armv7", Running: "devel+0123456789ab"}, nil},
		{"good", good, keys, pol, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.bundle, tt.keys, tt.policy)
			if got, want := err, tt.want; !errors.Is(got, want) || (want == nil) != (got == nil) {
				t.Fatalf("Verify = %v, want %v", got, want)
			}
		})
	}
	// both keys trusted during a rotation
	both := Keyring{}
	for k, v := range keys {
		both[k] = v
	}
	for k, v := range otherKeys {
		both[k] = v
	}
	for _, b := range [][]byte{good, byOther} {
		if _, err := Verify(b, both, pol); err != nil {
			t.Errorf("Verify with both keys trusted = %v", err)
		}
	}
}

func TestSign_Refusals(t *testing.T) {
	priv, _ := testKey(t)
	for _, c := range []struct{ version, arch string }{{"1.0", "armhf"}, {"latest", "arm64"}, {"1.0.0/../x", "arm64"}, {"", "amd64"}} {
		if _, _, err := Sign(priv, c.version, c.arch, []byte("x"), created); err == nil {
			t.Errorf("Sign(%q, %q) = nil error", c.version, c.arch)
		}
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
		ok   bool
	}{
		{"1.2.3", "1.2.3", 0, true},
		{"v1.2.3", "1.2.3+abc", 0, true},
		{"1.2", "1.2.0", 0, true},
		{"1.10.0", "1.9.9", 1, true},
		{"2.0.0", "10.0.0", -1, true},
		{"1.0.0-rc.1", "1.0.0", -1, true},
		{"1.0.0-rc.2", "1.0.0-rc.10", -1, true},
		{"1.0.0-alpha", "1.0.0-beta", -1, true},
		{"1.0.0-1", "1.0.0-alpha", -1, true},
		{"1.0.0-rc.1.1", "1.0.0-rc.1", 1, true},
		{"devel", "1.0.0", 0, false},
		{"1.2.3.4", "1.0.0", 0, false},
		{"01.2.3", "1.0.0", 0, false},
	}
	for _, tt := range tests {
		got, ok := CompareVersions(tt.a, tt.b)
		if got != tt.want || ok != tt.ok {
			t.Errorf("CompareVersions(%q, %q) = %d, %v; want %d, %v", tt.a, tt.b, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCompareReleases(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.2.3+git5.abc1234", "1.2.3+git4.def5678", 1},
		{"1.2.3+git4.abc1234", "1.2.3+git40.def5678", -1},
		{"1.2.3+git4.abc1234", "1.2.3", 0},
		{"1.2.4", "1.2.3+git40.def5678", 1},
		{"0.0.0+git81.abc1234.dirty", "0.0.0+git80.abc1234", 1},
	}
	for _, tt := range tests {
		if got, ok := compareReleases(tt.a, tt.b); got != tt.want || !ok {
			t.Errorf("compareReleases(%q, %q) = %d, %v; want %d", tt.a, tt.b, got, ok, tt.want)
		}
	}
}

func TestSameVersion(t *testing.T) {
	tests := []struct {
		got, want string
		same      bool
	}{
		{"1.2.3", "1.2.3", true},
		{"v1.2.3", "1.2.3", true},
		{"1.2.3+git4.abc1234", "1.2.3", true},
		{"1.2.3+git4.abc1234", "1.2.3+git4.abc1234", true},
		{"1.2.3+git4.abc1234", "1.2.3+git5.def5678", false}, // the old build still answering
		{"1.2.3", "1.2.3+git5.def5678", false},
		{"1.2.4", "1.2.3", false},
		{"devel", "1.2.3", false},
	}
	for _, tt := range tests {
		if got := sameVersion(tt.got, tt.want); got != tt.same {
			t.Errorf("sameVersion(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.same)
		}
	}
}

func TestKeys_GenerateLoad(t *testing.T) {
	dir := t.TempDir()
	id, privPath, pubPath, err := GenerateKey(filepath.Join(dir, "vendor"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("private key mode = %v, want %v", got, want)
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := KeyID(priv.Public().(ed25519.PublicKey)); got != id {
		t.Errorf("key id of the loaded key = %s, want %s", got, id)
	}
	trusted := filepath.Join(dir, "trusted")
	if err := os.MkdirAll(trusted, 0o755); err != nil {
		t.Fatal(err)
	}
	pub, _ := os.ReadFile(pubPath)
	os.WriteFile(filepath.Join(trusted, "vendor-2026.pub"), pub, 0o644)
	os.WriteFile(filepath.Join(trusted, "README"), []byte("not a key"), 0o644)
	kr, err := LoadKeyring(trusted)
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.IDs(); len(got) != 1 || got[0] != id {
		t.Errorf("keyring = %v, want [%s]", got, id)
	}
	os.WriteFile(filepath.Join(trusted, "broken.pub"), []byte("junk"), 0o644)
	if _, err := LoadKeyring(trusted); err == nil {
		t.Error("LoadKeyring with a broken .pub file = nil error")
	}
	if _, err := LoadKeyring(t.TempDir()); err == nil {
		t.Error("LoadKeyring of an empty directory = nil error")
	}
	if _, _, _, err := GenerateKey(filepath.Join(dir, "vendor")); err != nil {
		t.Errorf("a second key in the same directory: %v", err)
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name    string
		state   State
		current string
		want    Step
	}{
		{"no state", State{}, "1.0.0", StepNone},
		{"healthy", State{Phase: PhaseHealthy, From: "1.0.0", To: "1.1.0"}, "1.1.0", StepNone},
		{"rolled back", State{Phase: PhaseRolledBack, From: "1.0.0", To: "1.1.0"}, "1.0.0", StepNone},
		{"installing, not switched", State{Phase: PhaseInstalling, From: "1.0.0", To: "1.1.0"}, "1.0.0", StepAbort},
		{"installing, switched, not recorded", State{Phase: PhaseInstalling, From: "1.0.0", To: "1.1.0"}, "1.1.0", StepRollBack},
		{"first install, switched, not recorded", State{Phase: PhaseInstalling, To: "1.1.0"}, "1.1.0", StepFail},
		{"switched", State{Phase: PhaseSwitched, From: "1.0.0", To: "1.1.0"}, "1.1.0", StepRollBack},
		{"switched, first install", State{Phase: PhaseSwitched, To: "1.1.0"}, "1.1.0", StepFail},
	}
	for _, tt := range tests {
		if got, want := Decide(tt.state, tt.current), tt.want; got != want {
			t.Errorf("%s: Decide = %d, want %d", tt.name, got, want)
		}
	}
}
