package offline

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// KeySize is the length of the provisioned secret in bytes.
const KeySize = 32

// Key holds the keys derived from the terminal's provisioned secret. The secret itself is
// not kept. A Key prints as "[redacted]" so it cannot leak through a log line or an error.
//
// Two keys are derived with HKDF-SHA256 under distinct labels, so that neither use weakens
// the other: one encrypts credentials (AES-256-GCM), the other authenticates the hash chain
// (HMAC-SHA256). The acquirer, provisioned the same secret, derives the same chain key and
// can check every record's HMAC.
//
// A third key, under its own label, signs the terminal's requests to the acquirer
// (SigningKey): the terminal is provisioned one secret, and the acquirer, holding the same
// secret, derives the same three keys.
type Key struct {
	aead    cipher.AEAD
	chain   []byte
	signing []byte
}

// HKDF labels; changing one changes every derived key.
const (
	labelCredential = "posagent journal credential v1"
	labelChain      = "posagent journal chain v1"
	labelSigning    = "posagent acquirer request signing v1"
)

// NewKey derives the journal's keys from a 32-byte secret.
func NewKey(secret []byte) (*Key, error) {
	if len(secret) != KeySize {
		return nil, fmt.Errorf("journal key: the secret is %d bytes, want %d", len(secret), KeySize)
	}
	enc, err := hkdf.Key(sha256.New, secret, nil, labelCredential, 32)
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	chain, err := hkdf.Key(sha256.New, secret, nil, labelChain, 32)
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	signing, err := hkdf.Key(sha256.New, secret, nil, labelSigning, 32)
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	return &Key{aead: aead, chain: chain, signing: signing}, nil
}

// String hides the key.
func (*Key) String() string { return "[redacted]" }

// GoString hides the key from %#v.
func (*Key) GoString() string { return "[redacted]" }

// LoadKey reads the provisioned secret from a key file and derives the journal's keys.
//
// The file holds the 32-byte secret either raw (exactly 32 bytes) or as 64 hexadecimal
// digits, optionally followed by a newline (what `head -c32 /dev/urandom | xxd -p -c64`
// writes). It must not be readable or writable by group or others: a wider mode is refused
// with an error that says how to fix it, because a key anyone can read protects nothing.
//
// With create (development only: the agent passes it when its config says so), a missing
// file is created with a fresh random secret, as hex, with mode 0600. A terminal in the
// field gets its key provisioned and never creates one.
func LoadKey(path string, create bool) (*Key, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("journal key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("journal key %s: mode %04o lets group or others read it; run chmod 600 %s", path, perm, path)
	}
	buf, err := io.ReadAll(io.LimitReader(f, 2*KeySize+3))
	if err != nil {
		return nil, fmt.Errorf("journal key %s: %w", path, err)
	}
	secret, err := parseSecret(buf)
	clear(buf)
	if err != nil {
		return nil, fmt.Errorf("journal key %s: %w", path, err)
	}
	defer clear(secret)
	return NewKey(secret)
}

// parseSecret accepts 32 raw bytes or 64 hex digits with an optional trailing newline.
func parseSecret(b []byte) ([]byte, error) {
	if len(b) == KeySize {
		return bytes.Clone(b), nil
	}
	t := bytes.TrimRight(b, "\r\n")
	if len(t) == 2*KeySize {
		secret := make([]byte, KeySize)
		if _, err := hex.Decode(secret, t); err == nil {
			return secret, nil
		}
	}
	return nil, fmt.Errorf("the file must hold %d raw bytes or %d hex digits", KeySize, 2*KeySize)
}

func createKey(path string) (*Key, error) {
	secret := make([]byte, KeySize)
	defer clear(secret)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("journal key: %w", err)
	}
	// O_EXCL: never replace a key that appeared meanwhile; a lost key makes every stored
	// credential unreadable.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal key: create: %w", err)
	}
	text := hex.AppendEncode(nil, secret)
	_, err = f.Write(append(text, '\n'))
	clear(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("journal key: create: %w", err)
	}
	return NewKey(secret)
}

// seal encrypts a credential bound to its record id (the AAD), so a ciphertext copied onto
// another record does not decrypt. The output is nonce || ciphertext || tag.
func (k *Key) seal(id string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return k.aead.Seal(nonce, nonce, plaintext, []byte(id)), nil
}

// open decrypts what seal produced for the same id.
func (k *Key) open(id string, sealed []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, errors.New("credential ciphertext too short")
	}
	pt, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(id))
	if err != nil {
		return nil, errors.New("credential does not decrypt with this key (wrong key file, or the record was altered)")
	}
	return pt, nil
}

// mac is HMAC-SHA256 under the chain key over a label and data.
func (k *Key) mac(label string, data ...[]byte) []byte {
	m := hmac.New(sha256.New, k.chain)
	m.Write([]byte(label))
	m.Write([]byte{0})
	for _, d := range data {
		m.Write(d)
	}
	return m.Sum(nil)
}

// CredentialTag is the keyed digest of a credential that the hash chain covers: the chain
// commits to the credential without an unkeyed hash of a low-entropy secret (a wallet code
// has few unknown digits) sitting next to it in the file.
func (k *Key) CredentialTag(credential []byte) []byte {
	if len(credential) == 0 {
		return nil
	}
	return k.mac("credential", credential)
}

// SigningKey returns the key that signs the terminal's requests to the acquirer (package
// sync/signing): HKDF-SHA256 of the provisioned secret under its own label, so a leaked
// signing key neither decrypts credentials nor forges the chain. The result is a copy; the
// caller must not log it.
func (k *Key) SigningKey() []byte { return bytes.Clone(k.signing) }

// RecordMAC is the HMAC of a record's chain hash: the acquirer recomputes it to prove that
// the terminal, holding the secret, wrote the record.
func (k *Key) RecordMAC(hash []byte) []byte { return k.mac("record", hash) }
