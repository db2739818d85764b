package state

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"

	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
	"github.com/cordon-mdm/cordon/pki/identity"
)

// noTPM is a device without a TPM.
func noTPM() (transport.TPMCloser, error) { return nil, keystore.ErrNoTPM }

func kindOf(t *testing.T, d Dir) string {
	t.Helper()
	ks, err := d.KeyStore()
	if err != nil {
		t.Fatal(err)
	}
	return ks.Kind()
}

func TestKeyStoreChoiceBeforeEnrollment(t *testing.T) {
	sim := swtpmtest.Start(t)
	for _, c := range []struct {
		keys keystore.Choice
		tpm  keystore.Opener
		want string
	}{
		{"", sim.Open, "tpm"},
		{keystore.Auto, sim.Open, "tpm"},
		{keystore.Auto, noTPM, "file"},
		{keystore.FileKind, sim.Open, "file"},
		{keystore.TPMKind, sim.Open, "tpm"},
	} {
		if got := kindOf(t, Dir{Path: t.TempDir(), Keys: c.keys, TPM: c.tpm}); got != c.want {
			t.Errorf("--keystore %q: got %s, want %s", c.keys, got, c.want)
		}
	}
	if _, err := (Dir{Path: t.TempDir(), Keys: keystore.TPMKind, TPM: noTPM}).KeyStore(); !errors.Is(err, keystore.ErrNoTPM) {
		t.Fatalf("--keystore tpm without a TPM: got %v, want ErrNoTPM", err)
	}
}

func enrollAs(t *testing.T, d Dir, kind string) {
	t.Helper()
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveEnrollment(Config{DeviceID: "dev-1", KeyStore: kind}, "", ""); err != nil {
		t.Fatal(err)
	}
}

func TestEnrolledDeviceKeepsItsKeyStore(t *testing.T) {
	sim := swtpmtest.Start(t)
	// Enrolled with a file key; a TPM is present now: still the file.
	fileDev := Dir{Path: t.TempDir(), TPM: sim.Open}
	enrollAs(t, fileDev, "file")
	if got := kindOf(t, fileDev); got != "file" {
		t.Fatalf("file-enrolled device with a TPM present: %s", got)
	}
	fileDev.Keys = keystore.TPMKind
	if _, err := fileDev.KeyStore(); !errors.Is(err, ErrKeyStoreMismatch) {
		t.Fatalf("--keystore tpm on a file-enrolled device: got %v, want ErrKeyStoreMismatch", err)
	}
	// Enrolled before the TPM store existed: file.
	legacy := Dir{Path: t.TempDir(), TPM: sim.Open}
	enrollAs(t, legacy, "")
	if got := kindOf(t, legacy); got != "file" {
		t.Fatalf("legacy enrollment: %s", got)
	}
	// Enrolled with the TPM, the TPM unreachable now: still the TPM
	// (whose Signer says so), never a new file key.
	tpmDev := Dir{Path: t.TempDir(), Keys: keystore.TPMKind, TPM: sim.Open}
	if ks, err := tpmDev.KeyStore(); err != nil {
		t.Fatal(err)
	} else if _, err := ks.Signer(); err != nil {
		t.Fatal(err)
	}
	enrollAs(t, tpmDev, "tpm")
	tpmDev.Keys, tpmDev.TPM = keystore.Auto, noTPM
	ks, err := tpmDev.KeyStore()
	if err != nil {
		t.Fatal(err)
	}
	if ks.Kind() != "tpm" {
		t.Fatalf("tpm-enrolled device without its TPM: %s", ks.Kind())
	}
	if _, err := ks.Signer(); !errors.Is(err, keystore.ErrNoTPM) {
		t.Fatalf("signer without the TPM: got %v, want ErrNoTPM", err)
	}
	if _, err := os.Stat(filepath.Join(tpmDev.Path, keyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a file key appeared for a TPM device")
	}
	tpmDev.Keys = keystore.FileKind
	if _, err := tpmDev.KeyStore(); !errors.Is(err, ErrKeyStoreMismatch) {
		t.Fatalf("--keystore file on a tpm-enrolled device: got %v, want ErrKeyStoreMismatch", err)
	}
}

// enrollTPM makes a TPM key in d, has a test CA certify it, and saves
// the enrollment, as enrollment.Enroll does.
func enrollTPM(t *testing.T, d Dir) crypto.PublicKey {
	t.Helper()
	if err := d.Ensure(); err != nil {
		t.Fatal(err)
	}
	ks, err := d.KeyStore()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "dev-1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, signer.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leafCert, _ := x509.ParseCertificate(leafDER)
	if err := d.SaveEnrollment(Config{DeviceID: "dev-1", KeyStore: ks.Kind()}, identity.EncodeChain(leafCert), identity.EncodeChain(caCert)); err != nil {
		t.Fatal(err)
	}
	return signer.Public()
}

func TestTPMCertificateAndWipe(t *testing.T) {
	simA, simB := swtpmtest.Start(t), swtpmtest.Start(t)
	d := Dir{Path: t.TempDir(), Keys: keystore.TPMKind, TPM: simA.Open}
	pub := enrollTPM(t, d)
	d.Keys = keystore.Auto // as `cordon-agent run` without --keystore
	cert, err := d.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if !pub.(*ecdsa.PublicKey).Equal(cert.Leaf.PublicKey) {
		t.Fatal("certificate is not for the TPM key")
	}
	sum := sha256.Sum256([]byte("handshake"))
	sig, err := cert.PrivateKey.(crypto.Signer).Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], sig) {
		t.Fatalf("the certificate's key does not sign in the TPM: %v", err)
	}

	// The whole state dir copied to a machine with another TPM: no
	// client certificate can be made from it.
	copied := Dir{Path: t.TempDir(), TPM: simB.Open}
	entries, _ := os.ReadDir(d.Path)
	for _, e := range entries {
		if b, err := os.ReadFile(filepath.Join(d.Path, e.Name())); err == nil {
			os.WriteFile(filepath.Join(copied.Path, e.Name()), b, 0o600)
		}
	}
	if _, err := copied.Certificate(); err == nil {
		t.Fatal("a copied state dir yields a client certificate on another TPM")
	}

	// The wipe's step: the key is destroyed, the certificate unusable.
	if err := d.DestroyKeys(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tpm-key.pub", "tpm-key.priv"} {
		if _, err := os.Stat(filepath.Join(d.Path, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s survived the wipe", f)
		}
	}
	// Still enrolled (the wipe removes agent.json next): no new key is
	// made to stand in for the destroyed one.
	if _, err := d.Certificate(); !errors.Is(err, keystore.ErrKeyGone) {
		t.Fatalf("certificate after the key's destruction: got %v, want ErrKeyGone", err)
	}
	if _, err := os.Stat(filepath.Join(d.Path, "tpm-key.pub")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a new TPM key was made for an enrolled device")
	}
}
