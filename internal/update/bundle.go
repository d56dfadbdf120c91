package update

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// A bundle is one file:
//
//	magic          8 bytes  "PAUPD01\n"
//	manifest size  4 bytes  big endian, at most maxManifest
//	manifest       canonical JSON (Manifest)
//	signature      64 bytes ed25519 over signContext + manifest
//	binary         exactly manifest.size bytes, SHA-256 manifest.sha256
//
// The signature covers the manifest, and the manifest binds the binary by digest and size,
// so one signature check and one hash check cover every byte.
const (
	magic       = "PAUPD01\n"
	maxManifest = 4096
	signContext = "posagent update manifest v1\n"
)

// Bundle is a parsed bundle: the manifest as signed, and the binary.
type Bundle struct {
	Manifest Manifest
	raw      []byte // the manifest's signed bytes
	sig      []byte
	Binary   []byte
}

// Sign makes a bundle of binary for version and arch, signed with key.
func Sign(key ed25519.PrivateKey, version, arch string, bin []byte, now time.Time) ([]byte, Manifest, error) {
	if err := CheckVersion(version); err != nil {
		return nil, Manifest{}, err
	}
	if err := CheckArch(arch); err != nil {
		return nil, Manifest{}, err
	}
	sum := sha256.Sum256(bin)
	m := Manifest{Format: formatVersion, Version: version, Arch: arch, SHA256: hex.EncodeToString(sum[:]),
		Size: int64(len(bin)), KeyID: KeyID(key.Public().(ed25519.PublicKey)), Created: now.UTC().Truncate(time.Second)}
	raw, err := m.canonical()
	if err != nil {
		return nil, Manifest{}, err
	}
	sig := ed25519.Sign(key, append([]byte(signContext), raw...))
	var out bytes.Buffer
	out.Grow(len(magic) + 4 + len(raw) + len(sig) + len(bin))
	out.WriteString(magic)
	_ = binary.Write(&out, binary.BigEndian, uint32(len(raw)))
	out.Write(raw)
	out.Write(sig)
	out.Write(bin)
	return out.Bytes(), m, nil
}

// Parse splits a bundle into its parts; it checks the framing only, not the signature.
func Parse(b []byte) (*Bundle, error) {
	if len(b) < len(magic) {
		if bytes.HasPrefix([]byte(magic), b) {
			return nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrTruncated, len(b))
		}
		return nil, fmt.Errorf("%w: no bundle header", ErrFormat)
	}
	if string(b[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: no bundle header (want %q)", ErrFormat, magic[:7])
	}
	b = b[len(magic):]
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: ends in the header", ErrTruncated)
	}
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n == 0 || n > maxManifest {
		return nil, fmt.Errorf("%w: manifest size %d", ErrFormat, n)
	}
	if uint64(len(b)) < uint64(n)+ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: ends in the manifest or its signature", ErrTruncated)
	}
	bd := &Bundle{raw: b[:n], sig: b[n : n+ed25519.SignatureSize], Binary: b[n+ed25519.SignatureSize:]}
	m, err := parseManifest(bd.raw)
	if err != nil {
		return nil, err
	}
	bd.Manifest = m
	return bd, nil
}

// Policy is what a verified bundle must also satisfy on this terminal.
type Policy struct {
	Arch           string // the running binary's architecture (RuntimeArch)
	Running        string // the running version; not compared when it is not a version ("devel")
	AllowDowngrade bool   // accept a version not newer than Running
}

// Verify parses a bundle and checks it, in this order: framing, key known, signature over the
// manifest, size and digest of the binary, architecture, version. The error wraps the first
// refusal (ErrFormat, ErrTruncated, ErrUnknownKey, ErrBadSignature, ErrDigest, ErrArch,
// ErrDowngrade) and says why.
func Verify(b []byte, keys Keyring, p Policy) (*Bundle, error) {
	bd, err := Parse(b)
	if err != nil {
		return nil, err
	}
	m := bd.Manifest
	pub, ok := keys[m.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: signed with key %s, trusted keys are %v", ErrUnknownKey, m.KeyID, keys.IDs())
	}
	if !ed25519.Verify(pub, append([]byte(signContext), bd.raw...), bd.sig) {
		return nil, fmt.Errorf("%w: the manifest's signature does not verify with key %s", ErrBadSignature, m.KeyID)
	}
	if got := int64(len(bd.Binary)); got != m.Size {
		if got < m.Size {
			return nil, fmt.Errorf("%w: binary has %d bytes, the manifest says %d", ErrTruncated, got, m.Size)
		}
		return nil, fmt.Errorf("%w: %d bytes after the binary's %d", ErrTruncated, got-m.Size, m.Size)
	}
	sum := sha256.Sum256(bd.Binary)
	if got := hex.EncodeToString(sum[:]); got != m.SHA256 {
		return nil, fmt.Errorf("%w: binary's SHA-256 is %s, the manifest says %s", ErrDigest, got, m.SHA256)
	}
	if err := CheckArch(m.Arch); err != nil || m.Arch != p.Arch {
		return nil, fmt.Errorf("%w: bundle is for %s, this terminal runs %s", ErrArch, m.Arch, p.Arch)
	}
	if err := CheckVersion(m.Version); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if c, ok := compareReleases(m.Version, p.Running); ok && c <= 0 && !p.AllowDowngrade {
		return nil, fmt.Errorf("%w: bundle has %s, running %s (--allow-downgrade to install it anyway)", ErrDowngrade, m.Version, p.Running)
	}
	return bd, nil
}
