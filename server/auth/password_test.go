package auth

import (
	"crypto/fips140"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPasswordPolicy(t *testing.T) {
	p := DefaultPasswordPolicy
	old, err := HashPassword("an old passphrase we used")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check("sgt.ortiz@pd.example", "violet quarry lantern 7", []string{old}); err != nil {
		t.Fatalf("a good passphrase refused: %v", err)
	}
	for pw, why := range map[string]string{
		"short1!":                   "at least 12",
		strings.Repeat("x", 257):    "at most 256",
		"sgt.ortiz@pd.example1":     "user id",
		"Sgt.Ortiz-rules-the-night": "user id",
		"password1234":              "common",
		"Football2024!!":            "common",
		"123456789012":              "sequential",
		"zyxwvutsrqpo":              "sequential",
		"abababababab":              "repeated",
		"an old passphrase we used": "last 10",
	} {
		err := p.Check("sgt.ortiz@pd.example", pw, []string{old})
		if !errors.Is(err, ErrPassword) || !strings.Contains(err.Error(), why) {
			t.Errorf("%q: %v, want a refusal about %q", pw, err, why)
		}
	}
}

// TestHashFormats: whichever mode hashed it, a stored hash is read back;
// this build hashes with argon2id unless FIPS mode is on.
func TestHashFormats(t *testing.T) {
	h, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	want := "argon2id$"
	if fips140.Enabled() {
		want = "pbkdf2-sha256$"
	}
	if !strings.HasPrefix(h, want) || !CheckPassword(h, "correct horse battery staple") || CheckPassword(h, "correct horse battery stapler") {
		t.Fatalf("hash %q", h)
	}
	salt := []byte("0123456789abcdef")
	key, _ := pbkdf2.Key(sha256.New, "correct horse battery staple", salt, 1000, 32)
	enc := base64.RawStdEncoding
	legacy := fmt.Sprintf("pbkdf2-sha256$1000$%s$%s", enc.EncodeToString(salt), enc.EncodeToString(key))
	if !CheckPassword(legacy, "correct horse battery staple") {
		t.Fatal("a PBKDF2 hash from a FIPS-mode server no longer verifies")
	}
}

func FuzzCheckPassword(f *testing.F) {
	f.Add("argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5", "pw")
	f.Add("pbkdf2-sha256$1000$c2FsdA$a2V5", "pw")
	f.Fuzz(func(t *testing.T, stored, pw string) {
		CheckPassword(stored, pw)
	})
}
