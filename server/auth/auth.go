// Package auth authenticates API callers (bearer API keys, stored hashed)
// and holds Cordon's roles and password hashing.
package auth

import (
	"context"
	"crypto/fips140"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/secret"
	"golang.org/x/crypto/argon2"

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
	// The name becomes a label ("apikey:NAME" in the trail, a supervisor
	// a Bluetooth request names), so it follows the one name pattern.
	if err := input.Name("name", name); err != nil {
		return "", nil, err
	}
	s := secret.New(APIKeyPrefix)
	return s.Text, &store.APIKey{ID: s.ID, Name: name, Role: role, Hash: s.Hash, CreatedBy: createdBy}, nil
}

// Password hashing. Outside FIPS mode passwords are hashed with
// argon2id, which is memory-hard (RFC 9106's second recommendation: 3
// passes over 64 MiB). In FIPS mode argon2 is not an approved algorithm,
// so PBKDF2-HMAC-SHA-256 (SP 800-132) with 600 000 iterations is used.
// CheckPassword reads both, so a server can change mode.
const (
	pbkdf2Iter = 600_000
	saltLen    = 16
	keyLen     = 32

	argonTime    = 3
	argonMemory  = 64 * 1024 // KiB
	argonThreads = 2
)

// HashPassword returns "argon2id$v=19$m=M,t=T,p=P$SALT$KEY" or, in FIPS
// mode, "pbkdf2-sha256$ITER$SALT$KEY" (base64 raw std).
func HashPassword(password string) (string, error) {
	if len(password) < 12 {
		return "", errors.New("password must be at least 12 characters")
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	enc := base64.RawStdEncoding
	if fips140.Enabled() {
		key, err := pbkdf2.Key(sha256.New, password, salt, pbkdf2Iter, keyLen)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("pbkdf2-sha256$%d$%s$%s", pbkdf2Iter, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, keyLen)
	return fmt.Sprintf("argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// CheckPassword compares password with a stored hash in constant time.
func CheckPassword(stored, password string) bool {
	parts := strings.Split(stored, "$")
	enc := base64.RawStdEncoding
	switch {
	case len(parts) == 4 && parts[0] == "pbkdf2-sha256":
		iter, err := strconv.Atoi(parts[1])
		if err != nil || iter < 1 || iter > 10_000_000 {
			return false
		}
		salt, err1 := enc.DecodeString(parts[2])
		want, err2 := enc.DecodeString(parts[3])
		if err1 != nil || err2 != nil || len(want) == 0 {
			return false
		}
		got, err := pbkdf2.Key(sha256.New, password, salt, iter, len(want))
		return err == nil && subtle.ConstantTimeCompare(got, want) == 1
	case len(parts) == 5 && parts[0] == "argon2id" && parts[1] == fmt.Sprintf("v=%d", argon2.Version):
		if fips140.Enabled() {
			return false // not an approved algorithm here; an IT admin resets the password
		}
		var m, t uint32
		var p uint8
		if _, err := fmt.Sscanf(parts[2], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m < 8 || m > 1<<18 || t < 1 || t > 10 || p < 1 {
			return false
		}
		salt, err1 := enc.DecodeString(parts[3])
		want, err2 := enc.DecodeString(parts[4])
		if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
		return subtle.ConstantTimeCompare(got, want) == 1
	}
	return false
}
