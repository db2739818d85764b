// Package testbed gives a service's tests the real components most of
// them stand on, a SQLite store and Cordon's CA in one temporary data
// dir, set up and torn down in one place.
package testbed

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"testing"

	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/store"
)

// StoreAndCA opens a fresh SQLite store and CA in a new data dir, closed
// when t ends.
func StoreAndCA(t testing.TB) (dir string, st *store.Store, ca *pki.CA) {
	t.Helper()
	dir = t.TempDir()
	st, err := store.Open(t.Context(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ca, err = pki.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	return dir, st, ca
}

// Signer is the part of a CA DeviceCert needs (any *pki.CA).
type Signer interface {
	SignDevice(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error)
}

// DeviceCert is a certificate ca signs for deviceID over a fresh P-256
// key, with that key.
func DeviceCert(t testing.TB, ca Signer, deviceID string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.SignDevice(t.Context(), csr, deviceID)
	if err != nil {
		t.Fatal(err)
	}
	return chain[0], key
}
