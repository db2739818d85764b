package server

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

// TestCommandKey: the command-signing key is created once, kept 0600,
// survives a restart, and signs with plain Ed25519 (FIPS 186-5), which
// make test-fips runs under fips140=only.
func TestCommandKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadOrCreateCommandKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, commandKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("command key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := loadOrCreateCommandKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("a restart must keep the key agents were given at enrollment")
	}
	msg := []byte(`{"id":"c1","device":"d1","kind":"lock"}`)
	sig, err := k2.Sign(nil, msg, &ed25519.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pub := k1.Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, msg, sig) {
		t.Error("signature does not verify with the enrolled public key")
	}
	msg[len(msg)-3] ^= 1
	if ed25519.Verify(pub, msg, sig) {
		t.Error("signature verifies over a changed command")
	}
}
