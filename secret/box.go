package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// KeySize is the size of a Box key: AES-256.
const KeySize = 32

// Box seals secrets that must be kept for a while (a password needed again
// after a one-time code) with AES-GCM, so they are encrypted at rest.
type Box struct{ aead cipher.AEAD }

// NewBox returns a Box for a KeySize-byte key.
func NewBox(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secret box: the key must be %d bytes, not %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secret box: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret box: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts s; the result (base64) is safe to store.
func (b *Box) Seal(s String) (string, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("secret box: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(s.Reveal()), nil)), nil
}

// ErrUnsealable: the sealed text was not made by this key, or was altered.
var ErrUnsealable = errors.New("secret box: cannot open the sealed secret (wrong key, or altered)")

// Open decrypts what Seal made.
func (b *Box) Open(sealed string) (String, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(raw) < b.aead.NonceSize() {
		return String{}, ErrUnsealable
	}
	n := b.aead.NonceSize()
	plain, err := b.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return String{}, ErrUnsealable
	}
	return New(string(plain)), nil
}

// DecodeKey reads a base64 key (as configured).
func DecodeKey(s String) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(s.Reveal())
	if err != nil || len(k) != KeySize {
		return nil, fmt.Errorf("the key must be %d bytes in base64", KeySize)
	}
	return k, nil
}

// LoadOrCreateKey reads the key file at path, creating it with a new
// random key (mode 0600) when it does not exist. It is the embedded
// default; production passes a key from its secret store.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return DecodeKey(New(string(b)))
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("data key: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)), 0o600); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return key, nil
}
