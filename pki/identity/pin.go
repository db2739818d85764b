package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// VerifyPinnedServer checks a Cordon server's TLS chain without system
// roots: the chain must end in a self-signed root whose fingerprint is pin
// (any root when pin is empty: trust on first use), and the leaf must
// verify against that root for host. It returns the root.
func VerifyPinnedServer(cs tls.ConnectionState, host, pin string) (*x509.Certificate, error) {
	certs := cs.PeerCertificates
	if len(certs) < 2 {
		return nil, errors.New("server presented no CA chain")
	}
	root := certs[len(certs)-1]
	if !root.IsCA || root.CheckSignatureFrom(root) != nil {
		return nil, errors.New("server chain does not end in a self-signed root CA")
	}
	if pin != "" && Fingerprint(root) != NormalizeFingerprint(pin) {
		return nil, fmt.Errorf("server root CA fingerprint %s does not match the pinned %s", Fingerprint(root), NormalizeFingerprint(pin))
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	inter := x509.NewCertPool()
	for _, c := range certs[1 : len(certs)-1] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host}); err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return root, nil
}
