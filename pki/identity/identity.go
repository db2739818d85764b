// Package identity reads and writes how a device's identity is carried in
// X.509: the device id in a urn:uuid URI SAN, root fingerprints, PEM
// chains. It imports only the standard library so that the agent can use
// it without linking the CA.
package identity

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
)

// DeviceURI is the URI SAN that carries a device id.
func DeviceURI(deviceID string) *url.URL {
	return &url.URL{Scheme: "urn", Opaque: "uuid:" + deviceID}
}

// DeviceID extracts the device id from a device certificate's
// urn:uuid:... URI SAN (the CN mirrors it but is not trusted).
func DeviceID(cert *x509.Certificate) (string, error) {
	for _, u := range cert.URIs {
		if u.Scheme == "urn" && strings.HasPrefix(u.Opaque, "uuid:") {
			return strings.TrimPrefix(u.Opaque, "uuid:"), nil
		}
	}
	return "", errors.New("certificate carries no urn:uuid device id")
}

// Fingerprint is the SHA-256 of a certificate's DER, lowercase hex.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// NormalizeFingerprint lowercases and strips colons and spaces, so that
// "AB:CD..." as printed by other tools compares equal.
func NormalizeFingerprint(fp string) string {
	r := strings.NewReplacer(":", "", " ", "", "-", "")
	return strings.ToLower(r.Replace(strings.TrimSpace(fp)))
}

// Serial is how Cordon names a certificate serial (decimal).
func Serial(n *big.Int) string { return n.String() }

// EncodeChain PEM-encodes certificates in order.
func EncodeChain(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	return b.String()
}

// ParseChain decodes every CERTIFICATE block of a PEM text.
func ParseChain(pemText []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, pemText = pem.Decode(pemText)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// VerifyDeviceChain checks a device certificate chain the server handed
// out (at enrollment or renewal): the leaf is for pub, carries deviceID,
// and chains to roots for client authentication.
func VerifyDeviceChain(chain []*x509.Certificate, roots *x509.CertPool, pub crypto.PublicKey, deviceID string) error {
	if len(chain) == 0 {
		return errors.New("empty certificate chain")
	}
	leaf := chain[0]
	if k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(pub) {
		return errors.New("certificate is not for this device's key")
	}
	if id, err := DeviceID(leaf); err != nil || id != deviceID {
		return errors.New("certificate does not carry this device's id")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("certificate does not chain to the pinned root: %w", err)
	}
	return nil
}
