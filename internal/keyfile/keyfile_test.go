package keyfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestRoundTripAndPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.pem")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err := Write(path, key); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !key.PublicKey.Equal(got.Public()) {
		t.Fatal("different key read back")
	}
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o640)
		if _, err := Read(path); err == nil {
			t.Fatal("group-readable key accepted")
		}
	}
	os.WriteFile(path, []byte("not pem"), 0o600)
	if _, err := Read(path); err == nil {
		t.Fatal("garbage accepted")
	}
}
