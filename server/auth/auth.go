// Package auth authenticates API callers (bearer API keys, stored hashed)
// and holds Cordon's roles and password hashing.
package auth

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/server/store"
)

// Roles.
const (
	RoleITAdmin = "it-admin"
	RoleLASO    = "laso"
	RoleAuditor = "auditor"
	RoleUser    = "user"
)

// APIKeyPrefix begins every API key.
const APIKeyPrefix = "cdk"

// ErrUnauthenticated means no valid credential was presented.
var ErrUnauthenticated = errors.New("missing or invalid API key")

// ValidRole reports whether r is one of Cordon's roles.
func ValidRole(r string) bool {
	switch r {
	case RoleITAdmin, RoleLASO, RoleAuditor, RoleUser:
		return true
	}
	return false
}

// Principal is an authenticated caller.
type Principal struct {
	Actor string // "apikey:<name>"
	Role  string
	KeyID string
}

// KeyStore is what API-key authentication reads.
type KeyStore interface {
	GetAPIKey(ctx context.Context, id string) (*store.APIKey, error)
}

// Authenticate checks a bearer API key.
func Authenticate(ctx context.Context, ks KeyStore, bearer string) (*Principal, error) {
	id, hash, err := secret.Parse(APIKeyPrefix, bearer)
	if err != nil {
		return nil, ErrUnauthenticated
	}
	k, err := ks.GetAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, err
	}
	if !secret.Equal(k.Hash, hash) || k.Disabled {
		return nil, ErrUnauthenticated
	}
	return &Principal{Actor: "apikey:" + k.Name, Role: k.Role, KeyID: k.ID}, nil
}

// NewAPIKey makes a key record and the text to show once.
func NewAPIKey(name, role, createdBy string) (string, *store.APIKey, error) {
	if !ValidRole(role) {
		return "", nil, fmt.Errorf("unknown role %q: use it-admin, laso, auditor or user", role)
	}
	if name == "" || len(name) > 128 {
		return "", nil, errors.New("name must be 1 to 128 characters")
	}
	s := secret.New(APIKeyPrefix)
	return s.Text, &store.APIKey{ID: s.ID, Name: name, Role: role, Hash: s.Hash, CreatedBy: createdBy}, nil
}

// PBKDF2 parameters: FIPS-approved KDF, OWASP's iteration count for SHA-256.
const (
	pbkdf2Iter = 600_000
	saltLen    = 16
	keyLen     = 32
)

// HashPassword returns "pbkdf2-sha256$ITER$SALT$KEY" (base64 raw std).
func HashPassword(password string) (string, error) {
	if len(password) < 12 {
		return "", errors.New("password must be at least 12 characters")
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iter, keyLen)
	if err != nil {
		return "", err
	}
	enc := base64.RawStdEncoding
	return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword compares password with a stored hash in constant time.
func CheckPassword(stored, password string) bool {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != "pbkdf2-sha256" {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[2])
	want, err2 := enc.DecodeString(parts[3])
	if err1 != nil || err2 != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}
