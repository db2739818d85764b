// Package attesttest makes TPM structures in software for tests that
// need well-formed evidence without a TPM: input and fuzz tests of the
// server's decoders. Whatever they make verifies only as far as the
// server can check without a TPM (the shape); a credential made for
// SoftEK can never be activated.
package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/binary"

	"github.com/google/go-tpm/tpm2"

	"github.com/cordon-mdm/cordon/attest"
)

// SoftEK is an RSA EK public area (the standard template) over a fresh
// software key.
func SoftEK() []byte {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p := tpm2.RSAEKTemplate
	p.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: k.N.Bytes()})
	return tpm2.Marshal(p)
}

// SoftAK is an AK public area (attest.AKTemplate) over a software key,
// returned too, so a test can sign what it likes with the "AK".
func SoftAK() ([]byte, *ecdsa.PrivateKey) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return Public(attest.AKTemplate(), &k.PublicKey), k
}

// Public is tmpl with k as its key.
func Public(tmpl tpm2.TPMTPublic, k *ecdsa.PublicKey) []byte {
	raw, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
		X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]}, Y: tpm2.TPM2BECCParameter{Buffer: raw[33:]}})
	return tpm2.Marshal(tmpl)
}

// Certify is a TPM2_Certify answer made in software: a TPMS_ATTEST of
// type typ certifying the key with public area keyPub over nonce, signed
// by ak as a TPM would (ECDSA over its SHA-256). magic lets a test forge
// a structure no TPM made.
func Certify(ak *ecdsa.PrivateKey, magic tpm2.TPMGenerated, typ tpm2.TPMST, keyPub, nonce []byte) attest.Certification {
	area, err := tpm2.Unmarshal[tpm2.TPMTPublic](keyPub)
	if err != nil {
		panic(err)
	}
	name, err := tpm2.ObjectName(area)
	if err != nil {
		panic(err)
	}
	info := tpm2.Marshal(tpm2.TPMSAttest{Magic: magic, Type: tpm2.TPMSTAttestCertify, ExtraData: tpm2.TPM2BData{Buffer: nonce},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestCertify, &tpm2.TPMSCertifyInfo{Name: *name, QualifiedName: *name})})
	// Another type is written over the certify's (go-tpm marshals a
	// union only with contents of its tag), as a forger would.
	binary.BigEndian.PutUint16(info[4:6], uint16(typ))
	digest := sha256.Sum256(info)
	r, s, err := ecdsa.Sign(rand.Reader, ak, digest[:])
	if err != nil {
		panic(err)
	}
	sig := tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA,
		&tpm2.TPMSSignatureECC{Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()}})})
	return attest.Certification{CertifyInfo: info, Signature: sig, KeyPublic: keyPub}
}
