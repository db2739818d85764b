package keystore

import (
	"crypto/ecdsa"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestFileKey(t *testing.T) {
	ks := File{Path: filepath.Join(t.TempDir(), "key.pem")}
	k1, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(ks.Path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", st.Mode().Perm())
	}
	k2, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().(*ecdsa.PublicKey).Equal(k2.Public()) {
		t.Fatal("key changed between loads")
	}
	os.Chmod(ks.Path, 0o644)
	if _, err := ks.Signer(); err == nil {
		t.Fatal("world-readable key accepted")
	}
	if err := ks.Destroy(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ks.Path); !os.IsNotExist(err) {
		t.Fatal("key still present after Destroy")
	}
	if _, err := (File{Path: ks.Path, Existing: true}).Signer(); !errors.Is(err, ErrKeyGone) {
		t.Fatalf("Existing store without a key: got %v, want ErrKeyGone", err)
	}
	if _, err := os.Stat(ks.Path); !os.IsNotExist(err) {
		t.Fatal("an Existing store made a key")
	}
}

func TestParseChoice(t *testing.T) {
	for in, want := range map[string]Choice{"": Auto, "auto": Auto, "TPM": TPMKind, " file ": FileKind} {
		if got, err := ParseChoice(in); err != nil || got != want {
			t.Errorf("ParseChoice(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseChoice("hsm"); err == nil {
		t.Error("ParseChoice accepted hsm")
	}
}
