package keystore

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
)

// testCA is an ECDSA P-256 CA that issues a server certificate and client
// certificates from CSRs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) issue(t *testing.T, pub crypto.PublicKey, cn string, usage x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		DNSNames: []string{cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// mtlsServer accepts TLS 1.3 connections that present a client
// certificate from ca, and reports each handshake's outcome.
func mtlsServer(t *testing.T, ca *testCA) (addr string, results <-chan error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := ca.issue(t, &key.PublicKey, "localhost", x509.ExtKeyUsageServerAuth)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srv.Raw}, PrivateKey: key}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan error, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(30 * time.Second))
			err = c.(*tls.Conn).Handshake()
			if err == nil && len(c.(*tls.Conn).ConnectionState().PeerCertificates) == 0 {
				err = net.ErrClosed
			}
			c.Close()
			out <- err
		}
	}()
	return ln.Addr().String(), out
}

func dialWith(addr string, ca *testCA, leaf *x509.Certificate, signer crypto.Signer) error {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	c, err := tls.Dial("tcp", addr, &tls.Config{MinVersion: tls.VersionTLS13, ServerName: "localhost", RootCAs: pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.Raw}, PrivateKey: signer, Leaf: leaf}}})
	if err != nil {
		return err
	}
	defer c.Close()
	// In TLS 1.3 the server judges the client's certificate after the
	// client's handshake is done: a read surfaces its verdict.
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = c.Read(make([]byte, 1))
	return err
}

func TestTPMKeyAuthenticatesTLSClient(t *testing.T) {
	simA, simB := swtpmtest.Start(t), swtpmtest.Start(t)
	ks := newTPMStore(t, simA)
	signer, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	// The CSR is signed in the TPM too (enrollment and renewal).
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "device"}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signed in the TPM does not verify: %v", err)
	}
	ca := newTestCA(t)
	leaf := ca.issue(t, csr.PublicKey, "device", x509.ExtKeyUsageClientAuth)
	addr, results := mtlsServer(t, ca)

	// Read returns EOF once the server, satisfied, closes the connection.
	if err := dialWith(addr, ca, leaf, signer); err != nil && !errors.Is(err, io.EOF) {
		t.Fatalf("client with the TPM key: %v", err)
	}
	if err := <-results; err != nil {
		t.Fatalf("server refused the TPM-signed handshake: %v", err)
	}

	// The state dir copied to another machine: the store refuses it
	// outright, and a signer forced onto the blobs cannot sign there,
	// so the certificate is useless.
	dir := copyBlobs(t, ks.Dir)
	if _, err := (TPM{Dir: dir, Open: simB.Open}).Signer(); err == nil {
		t.Fatal("copied blobs produced a signer on another TPM")
	}
	pub, priv, err := TPM{Dir: dir}.readBlobs()
	if err != nil {
		t.Fatal(err)
	}
	forced, err := newSigner(simB.Open, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := dialWith(addr, ca, leaf, forced); err == nil {
		t.Fatal("a client on the other TPM connected with the copied key")
	}
	if err := <-results; err == nil {
		t.Fatal("server completed a handshake with the copied key")
	}
}
