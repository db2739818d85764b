// Package attest holds the TPM 2.0 attestation Cordon asks of a device at
// enrollment, after the shape of smallstep's ACME device-attest-01 "tpm"
// format: an endorsement key (EK) the TPM's manufacturer may have
// certified, an attestation key (AK) bound to that EK by credential
// activation (TPM2_MakeCredential here, TPM2_ActivateCredential on the
// device), and a TPM2_Certify of the identity key by the AK over a
// server nonce. The server side (CheckEK, CheckAK, MakeCredential,
// VerifyCertify) and the templates both sides agree on live here, with
// no dependency on either the agent or the server.
package attest

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/cordon-mdm/cordon/protocol"
)

// Refusals, distinguished so that the enrollment names what failed. The
// enrollment wraps each in its own refusal.
var (
	// ErrEvidence is a structure that does not parse or is not the kind
	// of key asked for.
	ErrEvidence = errors.New("malformed TPM evidence")
	// ErrEKCert is an EK certificate that does not chain to a configured
	// root or is not for the EK sent.
	ErrEKCert = errors.New("EK certificate not trusted")
	// ErrNotBound is a credential activation that did not yield the
	// secret: the AK is not in the TPM that holds the EK.
	ErrNotBound = errors.New("AK not bound to the EK")
	// ErrSignature is a certification the AK did not sign.
	ErrSignature = errors.New("certification not signed by the attestation key")
	// ErrWrongNonce is a certification over something else than the
	// challenge's nonce.
	ErrWrongNonce = errors.New("certification is over a wrong nonce")
	// ErrOtherKey is a certification of a key other than the CSR's.
	ErrOtherKey = errors.New("certification of a different key")
)

// Levels of key protection the server records for a device (see
// protocol.KeyProtectionRank for their order).
const (
	LevelAttested   = protocol.KeyTPMAttested
	LevelUnverified = protocol.KeyTPMUnverified
	LevelSoftware   = protocol.KeySoftware
)

// NV indices of the EK certificates (TCG EK Credential Profile 2.0).
const (
	RSAEKCertIndex tpm2.TPMHandle = 0x01c00002
	ECCEKCertIndex tpm2.TPMHandle = 0x01c0000a
)

func eccSigning(attrs tpm2.TPMAObject) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			CurveID: tpm2.TPMECCNistP256,
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
		}),
	}
}

// KeyTemplate is the identity key's public template: a non-restricted
// ECDSA P-256 / SHA-256 signing key that the TPM generated
// (SensitiveDataOrigin) and will never export (FixedTPM, FixedParent).
func KeyTemplate() tpm2.TPMTPublic {
	return eccSigning(tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
		UserWithAuth: true, SignEncrypt: true})
}

// AKTemplate is the attestation key's: the same kind of key, restricted,
// so that it signs only what the TPM itself produced (a TPMS_ATTEST) and
// never a digest the caller made look like one.
func AKTemplate() tpm2.TPMTPublic {
	return eccSigning(tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true,
		UserWithAuth: true, Restricted: true, SignEncrypt: true})
}

// ParsePublic reads a TPMT_PUBLIC, all of it and nothing after.
func ParsePublic(b []byte) (*tpm2.TPMTPublic, error) {
	p, err := tpm2.Unmarshal[tpm2.TPMTPublic](b)
	if err != nil {
		return nil, fmt.Errorf("%w: TPMT_PUBLIC: %v", ErrEvidence, err)
	}
	// Unmarshal stops at the structure's end; trailing bytes would be
	// something signed or hashed that we never looked at.
	if !bytes.Equal(tpm2.Marshal(p), b) {
		return nil, fmt.Errorf("%w: TPMT_PUBLIC has trailing or non-canonical bytes", ErrEvidence)
	}
	return p, nil
}

// Name is the TPM name of a public area (nameAlg || H(TPMT_PUBLIC)).
func Name(p *tpm2.TPMTPublic) ([]byte, error) {
	n, err := tpm2.ObjectName(p)
	if err != nil {
		return nil, fmt.Errorf("%w: name: %v", ErrEvidence, err)
	}
	return n.Buffer, nil
}

// CheckAK parses the AK's public area and refuses anything but a
// restricted, fixed, TPM-generated ECDSA P-256 / SHA-256 signing key: a
// key that is not restricted would sign a forged TPMS_ATTEST, one that is
// not fixedTPM could have been imported from outside any TPM.
func CheckAK(b []byte) (*tpm2.TPMTPublic, crypto.PublicKey, error) {
	p, err := ParsePublic(b)
	if err != nil {
		return nil, nil, err
	}
	a := p.ObjectAttributes
	if !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
		return nil, nil, fmt.Errorf("%w: the AK must be restricted, sign-only, fixedTPM, fixedParent and sensitiveDataOrigin", ErrEvidence)
	}
	if err := checkECDSAP256(p); err != nil {
		return nil, nil, fmt.Errorf("%w: AK: %v", ErrEvidence, err)
	}
	pub, err := tpm2.Pub(*p)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: AK: %v", ErrEvidence, err)
	}
	return p, pub, nil
}

func checkECDSAP256(p *tpm2.TPMTPublic) error {
	if p.Type != tpm2.TPMAlgECC || p.NameAlg != tpm2.TPMAlgSHA256 {
		return errors.New("not an ECC key with SHA-256 names")
	}
	e, err := p.Parameters.ECCDetail()
	if err != nil || e.CurveID != tpm2.TPMECCNistP256 || e.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return errors.New("not ECDSA on P-256")
	}
	if d, err := e.Scheme.Details.ECDSA(); err != nil || d.HashAlg != tpm2.TPMAlgSHA256 {
		return errors.New("not ECDSA with SHA-256")
	}
	return nil
}

// EK is a checked endorsement key.
type EK struct {
	Public *tpm2.TPMTPublic
	// Certified: the EK certificate sent chains to a configured root.
	Certified bool
	// Hash is the SHA-256 (hex) of the EK's public key, PKIX DER: what
	// a device is known by when there is no certificate (trust on first
	// use).
	Hash string
}

// CheckEK parses the EK's public area, which must be the TCG standard EK
// template (RSA 2048 or ECC P-256) apart from the key itself: only that
// template makes the EK a restricted decryption key whose use needs the
// endorsement hierarchy's authorisation. When cert is given, its key
// must be this EK's; when roots are given too, it must chain to one of
// them, and the EK is then Certified.
func CheckEK(pubArea, cert []byte, roots *x509.CertPool) (*EK, error) {
	p, err := ParsePublic(pubArea)
	if err != nil {
		return nil, err
	}
	if !standardEK(p) {
		return nil, fmt.Errorf("%w: the EK public area is not the standard RSA or ECC EK template", ErrEvidence)
	}
	pub, err := tpm2.Pub(*p)
	if err != nil {
		return nil, fmt.Errorf("%w: EK: %v", ErrEvidence, err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: EK: %v", ErrEvidence, err)
	}
	sum := sha256.Sum256(der)
	ek := &EK{Public: p, Hash: hex.EncodeToString(sum[:])}
	if len(cert) == 0 {
		return ek, nil
	}
	c, err := x509.ParseCertificate(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: EK certificate: %v", ErrEKCert, err)
	}
	if k, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return nil, fmt.Errorf("%w: the EK certificate is for another key than the EK sent", ErrEKCert)
	}
	if roots == nil {
		return ek, nil
	}
	// EK certificates mark their TPM-manufacturer subjectAltName
	// critical (a directoryName Go does not handle), and carry no EKU
	// that Go knows; neither says anything about the chain.
	c.UnhandledCriticalExtensions = dropOID(c.UnhandledCriticalExtensions, oidSAN)
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEKCert, err)
	}
	ek.Certified = true
	return ek, nil
}

var oidSAN = asn1.ObjectIdentifier{2, 5, 29, 17}

func dropOID(ids []asn1.ObjectIdentifier, drop asn1.ObjectIdentifier) []asn1.ObjectIdentifier {
	var out []asn1.ObjectIdentifier
	for _, id := range ids {
		if !id.Equal(drop) {
			out = append(out, id)
		}
	}
	return out
}

// standardEK compares p with the standard template of its type, the
// unique field (the key) aside.
func standardEK(p *tpm2.TPMTPublic) bool {
	var tmpl tpm2.TPMTPublic
	switch p.Type {
	case tpm2.TPMAlgRSA:
		tmpl = tpm2.RSAEKTemplate
	case tpm2.TPMAlgECC:
		tmpl = tpm2.ECCEKTemplate
	default:
		return false
	}
	strip := func(q tpm2.TPMTPublic) []byte {
		if q.Type == tpm2.TPMAlgRSA {
			q.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
		} else {
			q.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
		}
		return tpm2.Marshal(q)
	}
	return bytes.Equal(strip(*p), strip(tmpl))
}
