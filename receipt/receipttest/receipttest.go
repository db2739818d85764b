// Package receipttest is a throwaway Cordon-shaped CA for tests of wipe
// receipts: a root, an intermediate, and device certificates carrying the
// device id as Cordon's CA writes it (CN and urn:uuid URI SAN, client
// authentication).
package receipttest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
)

// CA is a root and an intermediate.
type CA struct {
	Root, Inter *x509.Certificate
	interKey    *ecdsa.PrivateKey
	serial      int64
}

// New makes a CA.
func New(t testing.TB) *CA {
	t.Helper()
	rootKey := key(t)
	now := time.Now()
	root := sign(t, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, nil, rootKey.Public(), rootKey)
	interKey := key(t)
	inter := sign(t, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "Test Intermediate CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, root, interKey.Public(), rootKey)
	return &CA{Root: root, Inter: inter, interKey: interKey, serial: 100}
}

// Roots is a pool of the root alone.
func (c *CA) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.Root)
	return p
}

// RootPEM is the root as a PEM file's contents.
func (c *CA) RootPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Root.Raw})
}

// Device certifies pub for deviceID: the chain leaf first.
func (c *CA) Device(t testing.TB, deviceID string, pub crypto.PublicKey) []*x509.Certificate {
	t.Helper()
	c.serial++
	now := time.Now()
	leaf := sign(t, &x509.Certificate{SerialNumber: big.NewInt(c.serial), Subject: pkix.Name{CommonName: deviceID},
		URIs: []*url.URL{identity.DeviceURI(deviceID)}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		c.Inter, pub, c.interKey)
	return []*x509.Certificate{leaf, c.Inter}
}

// Key is a fresh P-256 key, the kind a device holds.
func Key(t testing.TB) *ecdsa.PrivateKey { return key(t) }

func key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, by crypto.Signer) *x509.Certificate {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, by)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
