package applemdm

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// errDigest refuses a message signed over a digest outside FIPS 140's
// approved set. Checked before the signature is, because in a
// fips140=only build hashing with SHA-1 panics instead of failing.
var errDigest = errors.New("Mdm-Signature digest is not SHA-2")

var approvedDigests = []asn1.ObjectIdentifier{pkcs7.OIDDigestAlgorithmSHA256, pkcs7.OIDDigestAlgorithmSHA384,
	pkcs7.OIDDigestAlgorithmSHA512}

// signatureVerifier is nanomdm's cryptoutil.VerifyMdmSignature (the
// detached PKCS#7 signature over the body, in the Mdm-Signature header)
// with, in FIPS mode, the digest checked first.
func signatureVerifier(fipsMode bool) func(header string, body []byte) (*x509.Certificate, error) {
	return func(header string, body []byte) (*x509.Certificate, error) {
		sig, err := base64.StdEncoding.DecodeString(header)
		if err != nil {
			return nil, err
		}
		p7, err := pkcs7.Parse(sig)
		if err != nil {
			return nil, err
		}
		if fipsMode {
			for _, s := range p7.Signers {
				if !approved(s.DigestAlgorithm.Algorithm) {
					return nil, fmt.Errorf("%w: %v", errDigest, s.DigestAlgorithm.Algorithm)
				}
			}
		}
		p7.Content = body
		if err := p7.Verify(); err != nil {
			return nil, err
		}
		cert := p7.GetOnlySigner()
		if cert == nil {
			return nil, errors.New("Mdm-Signature: not exactly one signer")
		}
		return cert, nil
	}
}

func approved(oid asn1.ObjectIdentifier) bool {
	for _, a := range approvedDigests {
		if oid.Equal(a) {
			return true
		}
	}
	return false
}
