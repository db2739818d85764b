package pki

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"time"

	"github.com/smallstep/certificates/authority/provisioner"

	"github.com/cordon-mdm/cordon/pki/identity"
)

// minAppleRSABits is the smallest device key SignAppleIdentity accepts:
// Apple's SCEP payload makes RSA keys only, and below 2048 bits they are
// not approved under FIPS 186-5.
const minAppleRSABits = 2048

// SignAppleIdentity issues the MDM identity certificate of an Apple
// device from the CSR its SCEP payload sent. It differs from SignDevice
// only in the key: Apple devices make RSA keys, where Cordon's agents
// make ECDSA P-256 ones. The name and every extension still come from
// the server, not the CSR.
func (c *CA) SignAppleIdentity(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error) {
	if csr == nil {
		return nil, fmt.Errorf("%w: missing", identity.ErrBadCSR)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: bad signature: %v", identity.ErrBadCSR, err)
	}
	if pub, ok := csr.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() < minAppleRSABits {
		return nil, fmt.Errorf("%w: key must be RSA of at least %d bits", identity.ErrBadCSR, minAppleRSABits)
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-min(time.Minute, c.deviceLifetime/10)), now.Add(c.deviceLifetime)
	modify := provisioner.CertificateModifierFunc(func(cert *x509.Certificate, _ provisioner.SignOptions) error {
		cert.Subject = pkix.Name{CommonName: deviceID, Organization: []string{"Cordon device"}}
		cert.ExtraExtensions = nil
		cert.DNSNames, cert.IPAddresses, cert.EmailAddresses = nil, nil, nil
		cert.URIs = []*url.URL{identity.DeviceURI(deviceID)}
		// Key encipherment too: SCEP clients and nanomdm's identity use
		// the RSA key for both.
		cert.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		cert.NotBefore, cert.NotAfter = notBefore.UTC(), notAfter.UTC()
		return nil
	})
	chain, err := c.auth.SignWithContext(ctx, csr, provisioner.SignOptions{}, modify)
	if err != nil {
		return nil, fmt.Errorf("sign Apple identity certificate: %w", err)
	}
	return chain, nil
}
