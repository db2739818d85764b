// Package keystore holds the agent's identity key. The key is generated on
// the device and never leaves it. This file-backed store (0600) is the
// fallback; the TPM store satisfies the same interface.
package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
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

// File stores an ECDSA P-256 key as PKCS#8 PEM, mode 0600.
type File struct{ Path string }

// Kind implements Store.
func (f File) Kind() string { return "file" }

// Signer implements Store.
func (f File) Signer() (crypto.Signer, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Write(f.Path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, err
		}
		return key, nil
	}
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(f.Path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s is readable by others (mode %v); refusing to use it", f.Path, st.Mode().Perm())
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: not PEM", f.Path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	s, ok := k.(*ecdsa.PrivateKey)
	if !ok || s.Curve != elliptic.P256() {
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
