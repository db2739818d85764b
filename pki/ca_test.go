package pki

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
)

func newCSR(t *testing.T, key any) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "attacker-chosen"}, DNSNames: []string{"evil.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestCALifecycle(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ca, err := Open(dir, WithDeviceLifetime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rootKeyFile, interKeyFile} {
		st, err := os.Stat(filepath.Join(dir, "ca", f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	fp, err := ReadRootFingerprint(dir)
	if err != nil || fp != ca.RootFingerprint() {
		t.Fatalf("ReadRootFingerprint = %q, %v; want %q", fp, err, ca.RootFingerprint())
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain, err := ca.SignDevice(ctx, newCSR(t, key), "0b7d9c4e-2f43-4a51-9d5e-6f0a1b2c3d4e")
	if err != nil {
		t.Fatal(err)
	}
	leaf := chain[0]
	if id, err := identity.DeviceID(leaf); err != nil || id != "0b7d9c4e-2f43-4a51-9d5e-6f0a1b2c3d4e" {
		t.Fatalf("DeviceID = %q, %v", id, err)
	}
	if len(leaf.DNSNames) != 0 || leaf.Subject.CommonName != "0b7d9c4e-2f43-4a51-9d5e-6f0a1b2c3d4e" {
		t.Errorf("CSR subject leaked into certificate: %v %v", leaf.Subject, leaf.DNSNames)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got < time.Hour || got > time.Hour+2*time.Minute {
		t.Errorf("lifetime %v", got)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	inters := x509.NewCertPool()
	inters.AddCert(ca.Intermediate())
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("device cert does not verify: %v", err)
	}

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	if _, err := ca.SignDevice(ctx, newCSR(t, rsaKey), "x"); !errors.Is(err, identity.ErrBadCSR) {
		t.Fatalf("RSA CSR: %v", err)
	}

	serial := identity.Serial(leaf.SerialNumber)
	if err := ca.Revoke(ctx, serial, "test"); err != nil {
		t.Fatal(err)
	}
	if r, err := ca.IsRevoked(serial); err != nil || !r {
		t.Fatalf("IsRevoked = %v, %v", r, err)
	}
	der, err := ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(ca.Intermediate()); err != nil {
		t.Fatalf("CRL signature: %v", err)
	}
	found := false
	for _, e := range crl.RevokedCertificateEntries {
		found = found || e.SerialNumber.Cmp(leaf.SerialNumber) == 0
	}
	if !found {
		t.Fatal("revoked serial missing from CRL")
	}
	ca.Close()

	// A second start loads the same root.
	ca2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ca2.Close()
	if ca2.RootFingerprint() != fp {
		t.Fatal("root changed across restarts")
	}
	if r, _ := ca2.IsRevoked(serial); !r {
		t.Fatal("revocation lost across restart")
	}
}
