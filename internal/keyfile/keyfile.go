// Package keyfile stores private keys as PKCS#8 PEM files, mode 0600,
// written atomically. The CA, the server's command-signing key and the
// agent's file key store all use it.
package keyfile

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
)

// Write stores key at path (0600).
func Write(path string, key crypto.PrivateKey) error {
	b, err := encode(key)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b, 0o600)
}

// Create stores key at path (0600) unless a key is there already; then
// it answers an error wrapping fs.ErrExist and leaves that key alone.
func Create(path string, key crypto.PrivateKey) error {
	b, err := encode(key)
	if err != nil {
		return err
	}
	return atomicfile.Create(path, b, 0o600)
}

func encode(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Read loads the key at path. It refuses a file others can read: a key
// that leaked is no longer the device's or the server's alone.
func Read(path string) (crypto.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 && !permissionsUnenforced {
		return nil, fmt.Errorf("%s is accessible by others (mode %v); refusing to use it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: not a PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}

// Ed25519 reads the Ed25519 key at path. When there is none and create
// is set, it makes one and writes it (0600); without create the error
// wraps os.ErrNotExist. Processes making the key at once (servers
// starting together on a new data dir) all end with the one that was
// written first: a key another process signs with is never replaced.
func Ed25519(path string, create bool) (ed25519.PrivateKey, error) {
	k, err := Read(path)
	if errors.Is(err, os.ErrNotExist) && create {
		_, priv, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return nil, gerr
		}
		if cerr := Create(path, priv); !errors.Is(cerr, fs.ErrExist) {
			return priv, cerr
		}
		k, err = Read(path)
	}
	if err != nil {
		return nil, err
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key", path)
	}
	return priv, nil
}
