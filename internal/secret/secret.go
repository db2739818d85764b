// Package secret makes and parses Cordon's bearer secrets (enrollment
// tokens, API keys). A secret reads "<prefix>_<id>_<secret>": the id is
// public and indexes the stored row, the secret part is 160 random bits
// stored only as its SHA-256 and compared in constant time.
package secret

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"strings"
)

var enc = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrMalformed means the string is not a secret of the expected kind.
var ErrMalformed = errors.New("malformed credential")

// Secret is a freshly generated credential.
type Secret struct {
	Text string // give to the user once; never stored
	ID   string
	Hash []byte
}

// New generates a secret with the given prefix ("cdt", "cdk").
func New(prefix string) Secret {
	id := make([]byte, 10)
	sec := make([]byte, 20)
	rand.Read(id) // crypto/rand.Read never fails (Go ≥1.24)
	rand.Read(sec)
	idS := strings.ToLower(enc.EncodeToString(id))
	secS := strings.ToLower(enc.EncodeToString(sec))
	return Secret{Text: prefix + "_" + idS + "_" + secS, ID: idS, Hash: hash(secS)}
}

// Parse splits text into its id and the hash of its secret part.
func Parse(prefix, text string) (id string, h []byte, err error) {
	parts := strings.Split(strings.TrimSpace(text), "_")
	if len(parts) != 3 || parts[0] != prefix || len(parts[1]) != 16 || len(parts[2]) != 32 {
		return "", nil, ErrMalformed
	}
	if _, err := enc.DecodeString(strings.ToUpper(parts[1])); err != nil {
		return "", nil, ErrMalformed
	}
	if _, err := enc.DecodeString(strings.ToUpper(parts[2])); err != nil {
		return "", nil, ErrMalformed
	}
	return parts[1], hash(parts[2]), nil
}

// Equal compares two hashes in constant time.
func Equal(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

func hash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}
