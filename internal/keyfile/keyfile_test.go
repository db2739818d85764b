package keyfile

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"sync"
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

// Servers starting together on a new data dir each make a key; all of
// them must end up signing with the one on disk.
func TestEd25519CreatedAtOnceIsOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "command.key")
	keys := make([]ed25519.PrivateKey, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := Ed25519(path, true)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	onDisk, err := Ed25519(path, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if !onDisk.Equal(k) {
			t.Fatalf("caller %d holds a key other than the one on disk", i)
		}
	}
}
