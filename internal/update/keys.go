package update

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// PEM block types of the key files.
const (
	privateKeyType = "POSAGENT UPDATE PRIVATE KEY" // the 32-byte ed25519 seed
	publicKeyType  = "POSAGENT UPDATE PUBLIC KEY"  // the 32-byte ed25519 public key
)

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a key pair and writes DIR/<key id>.key (the private key, 0600) and
// DIR/<key id>.pub (the public key, 0644). It returns the key id and the two paths.
func GenerateKey(dir string) (id, privPath, pubPath string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", "", err
	}
	id = KeyID(pub)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", "", err
	}
	privPath, pubPath = filepath.Join(dir, id+".key"), filepath.Join(dir, id+".pub")
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: privateKeyType, Headers: map[string]string{"Key-Id": id}, Bytes: priv.Seed()}), 0o600); err != nil {
		return "", "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Headers: map[string]string{"Key-Id": id}, Bytes: pub}), 0o644); err != nil {
		return "", "", "", err
	}
	return id, privPath, pubPath, nil
}

// writeNew writes a file that must not exist yet, with exactly mode.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadPrivateKey reads a private key file written by GenerateKey.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != privateKeyType || len(blk.Bytes) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: not a posagent update private key", path)
	}
	return ed25519.NewKeyFromSeed(blk.Bytes), nil
}

// ParsePublicKey reads a public key in the format of GenerateKey's .pub file.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != publicKeyType || len(blk.Bytes) != ed25519.PublicKeySize {
		return nil, errors.New("not a posagent update public key")
	}
	return ed25519.PublicKey(blk.Bytes), nil
}

// Keyring is the set of trusted public keys, by key id.
type Keyring map[string]ed25519.PublicKey

// LoadPublicKey reads one public key file as a keyring of one.
func LoadPublicKey(path string) (Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return Keyring{KeyID(pub): pub}, nil
}

// LoadKeyring reads the trusted keys of a directory: every *.pub file is one public key
// (other files are ignored). Rotating a key is adding the new file, then removing the old.
// A .pub file that does not parse is an error, not skipped.
func LoadKeyring(dir string) (Keyring, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	kr := Keyring{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".pub") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		k, err := LoadPublicKey(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		for id, pub := range k {
			kr[id] = pub
		}
	}
	if len(kr) == 0 {
		return nil, fmt.Errorf("%s: no trusted update keys (*.pub)", dir)
	}
	return kr, nil
}

// IDs lists the keyring's key ids, sorted.
func (k Keyring) IDs() []string {
	ids := make([]string, 0, len(k))
	for id := range k {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
