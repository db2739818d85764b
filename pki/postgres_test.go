package pki_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/store"
)

// caDatabase is a fresh PostgreSQL database migrated by the store, and
// the URL of its CA schema, as cordon-server hands it to pki.
func caDatabase(t *testing.T) string {
	t.Helper()
	admin := os.Getenv(testenv.PostgresEnv)
	if admin == "" {
		needs.Missing(t, "%s is not set: the CA's PostgreSQL database is not tested", testenv.PostgresEnv)
	}
	st, err := store.Open(t.Context(), t.TempDir(), testenv.FreshPostgres(t, admin))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	u, err := st.SchemaURL(t.Context(), "ca")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func open(t *testing.T, dir string, opts ...pki.Option) *pki.CA {
	t.Helper()
	ca, err := pki.Open(dir, opts...)
	if err != nil {
		t.Fatalf("open CA in %s: %v", dir, err)
	}
	t.Cleanup(func() { ca.Close() })
	return ca
}

func deviceCert(t *testing.T, ca *pki.CA, deviceID string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: deviceID}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.SignDevice(context.Background(), csr, deviceID)
	if err != nil {
		t.Fatal(err)
	}
	return chain[0]
}

// onCRL reports whether the CA's current CRL lists serial, and its number.
func onCRL(t *testing.T, ca *pki.CA, serial *big.Int) (bool, *big.Int) {
	t.Helper()
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
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return true, crl.Number
		}
	}
	return false, crl.Number
}

// copyKeys copies a data dir's ca/ to another, as an operator copies
// the data dir to a second host.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(filepath.Join(to, "ca"), os.DirFS(filepath.Join(from, "ca"))); err != nil {
		t.Fatal(err)
	}
	// CopyFS makes files 0644 (and keyfile refuses those); keys are 0600.
	for _, k := range []string{"root.key", "intermediate.key"} {
		if err := os.Chmod(filepath.Join(to, "ca", k), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// On PostgreSQL two CAs opened on copies of one data dir, at the same
// time, are one CA: what one signs the other can revoke, and what one
// revokes the other reports and lists on the CRL it serves. The data
// dir holds no CA state.
func TestPostgresCAStateIsSharedAcrossDataDirs(t *testing.T) {
	u := caDatabase(t)
	a, b := t.TempDir(), t.TempDir()
	caA := open(t, a, pki.WithPostgres(u))
	copyKeys(t, a, b)
	caB := open(t, b, pki.WithPostgres(u))
	if caA.RootFingerprint() != caB.RootFingerprint() {
		t.Fatal("the copied data dir is another CA")
	}
	first, second := deviceCert(t, caA, "dev-1"), deviceCert(t, caA, "dev-2")
	if err := caA.Revoke(t.Context(), first.SerialNumber.String(), "lost"); err != nil {
		t.Fatal(err)
	}
	if revoked, err := caB.IsRevoked(first.SerialNumber.String()); err != nil || !revoked {
		t.Fatalf("the other CA: revoked %v, %v", revoked, err)
	}
	if listed, _ := onCRL(t, caB, first.SerialNumber); !listed {
		t.Fatal("the other CA's CRL does not list the revocation")
	}
	// B finds A's certificate: it is in the shared database, not A's.
	if err := caB.Revoke(t.Context(), second.SerialNumber.String(), "lost"); err != nil {
		t.Fatalf("revoke through the other CA: %v", err)
	}
	if listed, _ := onCRL(t, caA, second.SerialNumber); !listed {
		t.Fatal("the first CA's CRL does not list the other's revocation")
	}
	if revoked, err := caA.IsRevoked(deviceCert(t, caB, "dev-3").SerialNumber.String()); err != nil || revoked {
		t.Fatalf("an unrevoked certificate: revoked %v, %v", revoked, err)
	}
	for _, dir := range []string{a, b} {
		if _, err := os.Stat(filepath.Join(dir, "ca", "authority.db")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s has a bbolt database: %v", dir, err)
		}
	}
}

// Processes starting together on a new data dir make one CA.
func TestPostgresFirstStartsTogetherMakeOneCA(t *testing.T) {
	u := caDatabase(t)
	dir := t.TempDir()
	cas := make([]*pki.CA, 4)
	var wg sync.WaitGroup
	for i := range cas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca, err := pki.Open(dir, pki.WithPostgres(u))
			if err != nil {
				t.Error(err)
				return
			}
			cas[i] = ca
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	fp, err := pki.ReadRootFingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, ca := range cas {
		defer ca.Close()
		if ca.RootFingerprint() != fp {
			t.Fatalf("opener %d holds a CA other than the one on disk", i)
		}
	}
}

// A CA that kept bbolt, the server then moved to PostgreSQL, brings its
// revocations and the certificates it signed along, once.
func TestPostgresImportsTheBboltState(t *testing.T) {
	u := caDatabase(t)
	dir := t.TempDir()
	bolt, err := pki.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	revoked, kept := deviceCert(t, bolt, "dev-1"), deviceCert(t, bolt, "dev-2")
	if err := bolt.Revoke(t.Context(), revoked.SerialNumber.String(), "lost"); err != nil {
		t.Fatal(err)
	}
	_, boltNumber := onCRL(t, bolt, revoked.SerialNumber)
	if err := bolt.Close(); err != nil {
		t.Fatal(err)
	}

	ca := open(t, dir, pki.WithPostgres(u))
	if r, err := ca.IsRevoked(revoked.SerialNumber.String()); err != nil || !r {
		t.Fatalf("the bbolt revocation after the import: %v, %v", r, err)
	}
	listed, number := onCRL(t, ca, revoked.SerialNumber)
	if !listed || number.Cmp(boltNumber) <= 0 {
		t.Fatalf("CRL after the import: lists the revocation %v, number %v after bbolt's %v", listed, number, boltNumber)
	}
	// Revoke needs the certificate bbolt recorded.
	if err := ca.Revoke(t.Context(), kept.SerialNumber.String(), "retired"); err != nil {
		t.Fatalf("revoke a certificate bbolt recorded: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca", "authority.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bbolt's file is still in use: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca", "authority.db.imported")); err != nil {
		t.Fatalf("bbolt's file was not kept as imported: %v", err)
	}
}

// A server started on a new data dir of its own against a database
// another CA uses is refused: it would make a second CA.
func TestPostgresRefusesAnotherDataDirsCA(t *testing.T) {
	u := caDatabase(t)
	first := open(t, t.TempDir(), pki.WithPostgres(u))
	_, err := pki.Open(t.TempDir(), pki.WithPostgres(u))
	if !errors.Is(err, pki.ErrOtherCA) || !strings.Contains(err.Error(), first.RootFingerprint()) {
		t.Fatalf("a second CA on the database: %v, want ErrOtherCA naming %s", err, first.RootFingerprint())
	}
}
