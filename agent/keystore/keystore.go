// Package keystore holds the agent's identity key. The key is generated on
// the device and never leaves it. This file-backed store (0600) is the
// fallback; the TPM store satisfies the same interface.
package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"github.com/cordon-mdm/cordon/internal/keyfile"
)

// Store gives access to the device's signing key.
type Store interface {
	// Signer returns the key, creating it on first use.
	Signer() (crypto.Signer, error)
	// Destroy removes the key irrecoverably (wipe, unenroll).
	Destroy() error
	// Kind names the protection, e.g. "file" or "tpm", for posture.
	Kind() string
}

// ErrKeyGone means an existing key was required and there is none.
var ErrKeyGone = errors.New("the identity key is gone (wiped or deleted); enroll again")

// File stores an ECDSA P-256 key as PKCS#8 PEM, mode 0600.
type File struct {
	Path string
	// Existing forbids creating the key: an enrolled device's
	// certificate names its key, and a new one could never match it.
	Existing bool
}

// Kind implements Store.
func (f File) Kind() string { return "file" }

// Signer implements Store.
func (f File) Signer() (crypto.Signer, error) {
	s, err := keyfile.Read(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		if f.Existing {
			return nil, fmt.Errorf("%s: %w", f.Path, ErrKeyGone)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		return key, keyfile.Write(f.Path, key)
	}
	if err != nil {
		return nil, err
	}
	if k, ok := s.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not an ECDSA P-256 key", f.Path)
	}
	return s, nil
}

// Destroy implements Store.
func (f File) Destroy() error {
	err := os.Remove(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}
