package identity_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/url"
	"testing"

	"github.com/cordon-mdm/cordon/pki/identity"
)

func TestCheckNoClaims(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr := func(tmpl *x509.CertificateRequest) *x509.CertificateRequest {
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificateRequest(der)
		return c
	}
	dev, _ := url.Parse("urn:uuid:6f1c1d2e-1111-4222-8333-444455556666")
	for name, tmpl := range map[string]*x509.CertificateRequest{
		"URI":          {URIs: []*url.URL{dev}},
		"DNS":          {DNSNames: []string{"cordon.agency.gov"}},
		"IP":           {IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}},
		"email":        {EmailAddresses: []string{"a@b"}},
		"organisation": {Subject: pkix.Name{CommonName: "own", Organization: []string{"Cordon server"}}},
		"other CN":     {Subject: pkix.Name{CommonName: "someone-else"}},
	} {
		if err := identity.CheckNoClaims(csr(tmpl), "own"); !errors.Is(err, identity.ErrBadCSR) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, tmpl := range []*x509.CertificateRequest{{}, {Subject: pkix.Name{CommonName: "own"}}} {
		if err := identity.CheckNoClaims(csr(tmpl), "own"); err != nil {
			t.Errorf("%+v: %v", tmpl.Subject, err)
		}
	}
	for name, want := range map[string]bool{"6f1c1d2e-1111-4222-8333-444455556666": true, "URN:UUID:6f1c1d2e-1111-4222-8333-444455556666": true,
		"10.0.0.1": true, "::1": true, "a@b": true, "https://x": true, "Cordon.Agency.gov": true, "laptop-17": false, "laptop-17.agency.local": false} {
		if got := identity.IdentityIn(name, "cordon.agency.gov") != ""; got != want {
			t.Errorf("IdentityIn(%q) = %v, want %v", name, got, want)
		}
	}
}
