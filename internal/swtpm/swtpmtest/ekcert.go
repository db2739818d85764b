package swtpmtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/cordon-mdm/cordon/attest"
)

// EKCA plays a TPM manufacturer for tests: it certifies a swtpm's RSA
// EK and writes the certificate where a real TPM keeps it (NV index
// 0x01c00002), so that the attestation path sees what it would on a
// laptop.
type EKCA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewEKCA makes a self-signed EK root.
func NewEKCA(t testing.TB) *EKCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TPM Manufacturer EK Root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &EKCA{Cert: cert, key: key}
}

// PEM is the root as a PEM bundle of one, for --tpm-ek-roots.
func (ca *EKCA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Provision reads s's RSA EK (CreatePrimary of the standard template),
// issues its certificate and writes it to NV with owner authorisation
// (NV_DefineSpace, NV_Write).
func (ca *EKCA) Provision(t testing.TB, s *TPM) {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	ek, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(tpm2.RSAEKTemplate)}.Execute(tpm)
	if err != nil {
		tpm.Close()
		t.Fatalf("CreatePrimary EK: %v", err)
	}
	tpm2.FlushContext{FlushHandle: ek.ObjectHandle}.Execute(tpm)
	// swtpm serves one connection at a time: WriteNV opens its own.
	tpm.Close()
	area, err := ek.OutPublic.Contents()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := tpm2.Pub(*area)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()),
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageKeyEncipherment}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	WriteNV(t, s, attest.RSAEKCertIndex, der)
}

// WriteNV defines index (owner-created, readable with its empty auth
// like an EK certificate index) and writes data to it.
func WriteNV(t testing.TB, s *TPM, index tpm2.TPMHandle, data []byte) {
	t.Helper()
	tpm, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer tpm.Close()
	owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
	if _, err := (tpm2.NVDefineSpace{AuthHandle: owner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
		NVIndex: index, NameAlg: tpm2.TPMAlgSHA256,
		Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthRead: true, NoDA: true},
		DataSize:   uint16(len(data)),
	})}).Execute(tpm); err != nil {
		t.Fatalf("NV_DefineSpace %#x: %v", uint32(index), err)
	}
	rp, err := tpm2.NVReadPublic{NVIndex: index}.Execute(tpm)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 512 {
		end := min(off+512, len(data))
		if _, err := (tpm2.NVWrite{AuthHandle: owner, NVIndex: tpm2.NamedHandle{Handle: index, Name: rp.NVName},
			Data: tpm2.TPM2BMaxNVBuffer{Buffer: data[off:end]}, Offset: uint16(off)}).Execute(tpm); err != nil {
			t.Fatalf("NV_Write: %v", err)
		}
	}
}
