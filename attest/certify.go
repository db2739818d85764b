package attest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// Certification is what a device returns for a challenge: TPM2_Certify's
// signed TPMS_ATTEST and signature, and the public area of the key it
// certified.
type Certification struct {
	CertifyInfo, Signature, KeyPublic []byte
}

// VerifyCertify checks that ak (the challenge's attestation key) signed
// a TPM-generated certification, over nonce, of the key whose public
// area is sent, that this area is the identity key template, and that its
// key is want (the CSR's). It returns the first failure: ErrEvidence,
// ErrSignature, ErrWrongNonce or ErrOtherKey.
func VerifyCertify(ak *ecdsa.PublicKey, c Certification, nonce []byte, want *ecdsa.PublicKey) error {
	sig, err := tpm2.Unmarshal[tpm2.TPMTSignature](c.Signature)
	if err != nil {
		return fmt.Errorf("%w: TPMT_SIGNATURE: %v", ErrEvidence, err)
	}
	ec, err := sig.Signature.ECDSA()
	if err != nil || sig.SigAlg != tpm2.TPMAlgECDSA || ec.Hash != tpm2.TPMAlgSHA256 {
		return fmt.Errorf("%w: the certification is not an ECDSA SHA-256 signature", ErrSignature)
	}
	// The signature is checked before anything in the attest blob is
	// believed: only the AK's word about it counts.
	digest := sha256.Sum256(c.CertifyInfo)
	r, s := new(big.Int).SetBytes(ec.SignatureR.Buffer), new(big.Int).SetBytes(ec.SignatureS.Buffer)
	if ak == nil || !ecdsa.Verify(ak, digest[:], r, s) {
		return ErrSignature
	}
	info, err := ParseAttest(c.CertifyInfo)
	if err != nil {
		return err
	}
	if info.Type != tpm2.TPMSTAttestCertify {
		return fmt.Errorf("%w: the attestation is not a TPM2_Certify", ErrEvidence)
	}
	if subtle.ConstantTimeCompare(info.ExtraData.Buffer, nonce) != 1 {
		return ErrWrongNonce
	}
	cert, err := info.Attested.Certify()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrEvidence, err)
	}
	key, err := ParsePublic(c.KeyPublic)
	if err != nil {
		return err
	}
	name, err := Name(key)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(cert.Name.Buffer, name) != 1 {
		return fmt.Errorf("%w: the TPM certified another key than the key_public sent", ErrOtherKey)
	}
	if key.ObjectAttributes != KeyTemplate().ObjectAttributes {
		return fmt.Errorf("%w: the certified key is not a fixed, TPM-generated signing key", ErrOtherKey)
	}
	if err := checkECDSAP256(key); err != nil {
		return fmt.Errorf("%w: the certified key: %v", ErrOtherKey, err)
	}
	pub, err := tpm2.Pub(*key)
	if err != nil {
		return fmt.Errorf("%w: the certified key: %v", ErrEvidence, err)
	}
	if want == nil || !want.Equal(pub) {
		return fmt.Errorf("%w: the certified key is not the certificate request's key", ErrOtherKey)
	}
	return nil
}

// ParseAttest reads a TPMS_ATTEST, refusing one the TPM did not make
// (magic TPM_GENERATED_VALUE) and trailing bytes.
func ParseAttest(b []byte) (*tpm2.TPMSAttest, error) {
	a, err := tpm2.Unmarshal[tpm2.TPMSAttest](b)
	if err != nil {
		return nil, fmt.Errorf("%w: TPMS_ATTEST: %v", ErrEvidence, err)
	}
	if a.Magic != tpm2.TPMGeneratedValue {
		return nil, fmt.Errorf("%w: TPMS_ATTEST is not TPM-generated", ErrEvidence)
	}
	return a, nil
}
