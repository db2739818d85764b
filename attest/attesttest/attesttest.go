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
