package attest

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/fips140"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"

	"github.com/google/go-tpm/tpm2"
)

const cryptoSHA256 = crypto.SHA256

// softEK is an RSA EK whose private half the test holds, so it can open
// what was protected for it as the TPM would.
func softEK(t *testing.T) (*tpm2.TPMTPublic, *rsa.PrivateKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := tpm2.RSAEKTemplate
	p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()})
	return &p, k
}

// TestMakeCredentialIsCreateCredential: for the seed go-tpm's
// tpm2.CreateCredential encapsulated, our protect (the FIPS-safe CFB)
// makes exactly its ID object. Not run under fips140=only, where
// CreateCredential itself is refused: that is why MakeCredential exists.
// The swtpm test (agent/keystore) activates MakeCredential's output in a
// real TPM in both builds.
func TestMakeCredentialIsCreateCredential(t *testing.T) {
	if fips140.Enforced() {
		t.Skip("tpm2.CreateCredential uses cipher.NewCFBEncrypter, refused under fips140=only")
	}
	ek, priv := softEK(t)
	key, err := tpm2.ImportEncapsulationKey(ek)
	if err != nil {
		t.Fatal(err)
	}
	name := append([]byte{0, 0x0b}, bytes.Repeat([]byte{7}, 32)...)
	for _, secret := range [][]byte{{1}, bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{3}, 17)} {
		idObject, enc, err := tpm2.CreateCredential(rand.Reader, key, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		seed, err := rsa.DecryptOAEP(sha256.New(), nil, priv, enc, []byte("IDENTITY\x00"))
		if err != nil {
			t.Fatal(err)
		}
		ours, err := protect(cryptoSHA256, 128, seed, name, secret)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ours, idObject) {
			t.Fatalf("secret %x: MakeCredential's ID object differs from tpm2.CreateCredential's", secret)
		}
	}
	// And the whole of MakeCredential opens the same way.
	idObject, enc, err := MakeCredential(rand.Reader, ek, name, []byte("s"))
	if err != nil {
		t.Fatal(err)
	}
	seed, err := rsa.DecryptOAEP(sha256.New(), nil, priv, enc, []byte("IDENTITY\x00"))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := protect(cryptoSHA256, 128, seed, name, []byte("s")); !bytes.Equal(again, idObject) {
		t.Fatal("MakeCredential's ID object is not protect's for its own seed")
	}
}

// TestCFB128IsTheStandardMode compares cfb128 with crypto/cipher's CFB
// encrypter (SP 800-38A CFB-128) over lengths around the block size.
func TestCFB128IsTheStandardMode(t *testing.T) {
	if fips140.Enforced() {
		t.Skip("cipher.NewCFBEncrypter is refused under fips140=only")
	}
	b, _ := aes.NewCipher(bytes.Repeat([]byte{5}, 16))
	for n := range 50 {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		want := make([]byte, n)
		cipher.NewCFBEncrypter(b, make([]byte, 16)).XORKeyStream(want, plain)
		if got := cfb128(b, plain); !bytes.Equal(got, want) {
			t.Fatalf("length %d: %x, want %x", n, got, want)
		}
	}
}

// TestMakeCredentialUnderFIPS: the credential is made with fips140=only
// enforced (and in any build).
func TestMakeCredentialUnderFIPS(t *testing.T) {
	ek, _ := softEK(t)
	if _, _, err := MakeCredential(rand.Reader, ek, []byte{0, 0x0b, 1, 2}, []byte("secret")); err != nil {
		t.Fatalf("MakeCredential (fips140 enforced: %v): %v", fips140.Enforced(), err)
	}
}
