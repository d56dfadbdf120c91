package update

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// FuzzVerify feeds arbitrary bytes to the bundle reader and verifier, which read files a
// technician copies onto a terminal: they never panic, never accept what the key did not
// sign, and every refusal is one of the documented errors. Seeds: a genuine bundle, cut and
// flipped (testdata/fuzz/FuzzVerify holds more).
func FuzzVerify(f *testing.F) {
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	keys := Keyring{KeyID(pub): pub}
	good, _, err := Sign(priv, "1.2.3", "amd64", []byte("\x7fELF a binary"), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	flipped := bytes.Clone(good)
	flipped[len(flipped)-1] ^= 1
	f.Add(flipped)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		bd, err := Verify(b, keys, Policy{Arch: "amd64", AllowDowngrade: true})
		if err == nil {
			// The manifest is canonical and binds the binary by size and digest: only the
			// signed bundle itself can verify.
			if !bytes.Equal(b, good) || bd.Manifest.Version != "1.2.3" {
				t.Fatalf("accepted a bundle that is not the signed one")
			}
			return
		}
		for _, known := range []error{ErrFormat, ErrTruncated, ErrUnknownKey, ErrBadSignature, ErrDigest, ErrArch, ErrDowngrade} {
			if errors.Is(err, known) {
				return
			}
		}
		t.Fatalf("refusal outside the documented errors: %v", err)
	})
}
