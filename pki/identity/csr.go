package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ErrBadCSR is returned for a CSR Cordon will not sign. The checks live
// here, beside the identity they protect, so that enrollment and the
// gateway's renewal refuse a request without linking the CA.
var ErrBadCSR = errors.New("certificate request refused")

// ParseCSR decodes a PEM certificate request.
func ParseCSR(pemText string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(pemText))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: not a PEM CERTIFICATE REQUEST", ErrBadCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	return csr, nil
}

// CheckDeviceCSR accepts only self-signed CSRs over ECDSA P-256 keys.
func CheckDeviceCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return fmt.Errorf("%w: missing", ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return fmt.Errorf("%w: bad signature: %v", ErrBadCSR, err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: key must be ECDSA P-256", ErrBadCSR)
	}
	return nil
}

// CheckNoClaims refuses a CSR that claims an identity. A device's
// certificate names only what the server gives it, so the CSR may carry a
// key and at most a common name equal to ownName (the agent puts its
// hostname, or on renewal its device id, there); a SAN of any kind (DNS
// name, IP, email, URI such as urn:uuid), another subject attribute or
// another common name is an attempt to be someone else.
func CheckNoClaims(csr *x509.CertificateRequest, ownName string) error {
	switch {
	case len(csr.DNSNames) > 0:
		return fmt.Errorf("%w: it names DNS name %q", ErrBadCSR, csr.DNSNames[0])
	case len(csr.IPAddresses) > 0:
		return fmt.Errorf("%w: it names IP address %s", ErrBadCSR, csr.IPAddresses[0])
	case len(csr.EmailAddresses) > 0:
		return fmt.Errorf("%w: it names email address %q", ErrBadCSR, csr.EmailAddresses[0])
	case len(csr.URIs) > 0:
		return fmt.Errorf("%w: it names URI %q", ErrBadCSR, csr.URIs[0].String())
	}
	for _, atv := range csr.Subject.Names {
		if !atv.Type.Equal(oidCommonName) {
			return fmt.Errorf("%w: its subject carries %v; only a common name is allowed", ErrBadCSR, atv.Type)
		}
	}
	if cn := csr.Subject.CommonName; cn != "" && cn != ownName {
		return fmt.Errorf("%w: subject common name %q is not this device's own name", ErrBadCSR, cn)
	}
	return nil
}

var oidCommonName = asn1.ObjectIdentifier{2, 5, 4, 3}

// IdentityIn says what identity name claims, or "" when none: a UUID or
// urn:uuid (a device), an IP address, an email address or URI, or one of
// reserved (the server's own names, compared without case).
func IdentityIn(name string, reserved ...string) string {
	lower := strings.ToLower(name)
	for _, r := range reserved {
		if r != "" && lower == strings.ToLower(r) {
			return "one of the server's own names"
		}
	}
	switch {
	case isUUID(strings.TrimPrefix(lower, "urn:uuid:")):
		return "a device identity (UUID)"
	case net.ParseIP(name) != nil:
		return "an IP address"
	case strings.Contains(name, "@"):
		return "an email address"
	case strings.Contains(name, ":"), strings.Contains(name, "/"):
		return "a URI"
	}
	return ""
}

// isUUID accepts the forms github.com/google/uuid's Validate accepts
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, with a urn:uuid: prefix, in
// braces, or 32 hex digits), so that this package stays on the standard
// library and the agent links nothing more for it.
func isUUID(s string) bool {
	switch {
	case len(s) == 45 && strings.EqualFold(s[:9], "urn:uuid:"):
		s = s[9:]
	case len(s) == 38 && s[0] == '{' && s[37] == '}':
		s = s[1:37]
	case len(s) == 32:
		return isHex(s)
	}
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return false
	}
	return isHex(s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:])
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
