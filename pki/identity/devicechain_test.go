package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
)

func TestVerifyDeviceChain(t *testing.T) {
	ca, err := pki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	other, err := pki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	chain, err := ca.SignDevice(context.Background(), csr, "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	otherRoots := x509.NewCertPool()
	otherRoots.AddCert(other.Root())
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

	if err := identity.VerifyDeviceChain(chain, roots, key.Public(), "dev-1"); err != nil {
		t.Fatalf("good chain refused: %v", err)
	}
	for _, c := range []struct {
		name  string
		chain []*x509.Certificate
		roots *x509.CertPool
		pub   any
		id    string
		want  string
	}{
		{"another key", chain, roots, stranger.Public(), "dev-1", "not for this device's key"},
		{"another device", chain, roots, key.Public(), "dev-2", "does not carry this device's id"},
		{"another root", chain, otherRoots, key.Public(), "dev-1", "does not chain"},
		{"no intermediate", chain[:1], roots, key.Public(), "dev-1", "does not chain"},
		{"empty", nil, roots, key.Public(), "dev-1", "empty"},
	} {
		err := identity.VerifyDeviceChain(c.chain, c.roots, c.pub, c.id)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
