// Package pki is Cordon's certificate authority: an embedded smallstep
// authority whose root and intermediate live in the server's data dir. It
// issues the server's TLS certificate and device certificates from CSRs,
// revokes, and publishes a CRL.
package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/authority/config"
	"github.com/smallstep/certificates/authority/provisioner"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/filelock"
	"github.com/cordon-mdm/cordon/internal/keyfile"
	"github.com/cordon-mdm/cordon/pki/identity"
)

// DefaultDeviceLifetime is the lifetime of a device certificate.
const DefaultDeviceLifetime = 30 * 24 * time.Hour

// File names inside <data>/ca.
const (
	rootCertFile  = "root.crt"
	rootKeyFile   = "root.key"
	interCertFile = "intermediate.crt"
	interKeyFile  = "intermediate.key"
)

// CA is the embedded authority.
type CA struct {
	dir            string
	postgres       string // the authority's database (WithPostgres), or "" for bbolt
	auth           *authority.Authority
	root, inter    *x509.Certificate
	deviceLifetime time.Duration
	log            *slog.Logger
	// slots bounds the calls into the authority at once. On PostgreSQL
	// each holds a connection of the driver's pool, which has no bound
	// of its own (nosql opens it from a URL), and a burst (Apple
	// check-ins asking IsRevoked) would take the connections the store
	// needs from the database's limit.
	slots chan struct{}
}

// maxCalls is the authority's share of PostgreSQL connections.
const maxCalls = 8

// enter takes a slot for a call into the authority; the func frees it.
func (c *CA) enter(ctx context.Context) (func(), error) {
	select {
	case c.slots <- struct{}{}:
		return func() { <-c.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Option configures a CA; like smallstep's options it may fail.
type Option func(*CA) error

// WithDeviceLifetime sets the lifetime of device certificates.
func WithDeviceLifetime(d time.Duration) Option {
	return func(c *CA) error {
		if d <= 0 {
			return fmt.Errorf("device certificate lifetime must be positive, got %v", d)
		}
		c.deviceLifetime = d
		return nil
	}
}

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option {
	return func(c *CA) error { c.log = l; return nil }
}

// lockFile, in <data>/ca, is held while a process creates or loads the
// CA, so that processes starting together on one data dir end with one
// CA, made by the first, and the others load it.
const lockFile = ".lock"

// lockWait bounds the wait for another process's first start, which
// takes well under a second.
const lockWait = time.Minute

// Open loads the CA from dataDir/ca, creating root and intermediate on
// first start. The authority's own database (revocations, the CRL) is
// bbolt beside them, which only one process opens, unless WithPostgres.
func Open(dataDir string, opts ...Option) (*CA, error) {
	c := &CA{dir: filepath.Join(dataDir, "ca"), deviceLifetime: DefaultDeviceLifetime, log: slog.New(slog.DiscardHandler),
		slots: make(chan struct{}, maxCalls)}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	lock, err := filelock.Wait(ctx, filepath.Join(c.dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("wait for another process starting on %s: %w", c.dir, err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(filepath.Join(c.dir, rootCertFile)); errors.Is(err, os.ErrNotExist) {
		if err := create(c.dir); err != nil {
			return nil, fmt.Errorf("create CA: %w", err)
		}
		c.log.Info("created certificate authority", "dir", c.dir)
	}
	root, err := readCert(filepath.Join(c.dir, rootCertFile))
	if err != nil {
		return nil, err
	}
	inter, err := readCert(filepath.Join(c.dir, interCertFile))
	if err != nil {
		return nil, err
	}
	interKey, err := keyfile.Read(filepath.Join(c.dir, interKeyFile))
	if err != nil {
		return nil, err
	}
	c.root, c.inter = root, inter
	adb, err := c.openDB()
	if err != nil {
		return nil, err
	}
	cfg := &config.Config{
		CRL: &config.CRLConfig{Enabled: true, GenerateOnRevoke: true, CacheDuration: &provisioner.Duration{Duration: 24 * time.Hour}, RenewPeriod: &provisioner.Duration{Duration: 6 * time.Hour}},
		AuthorityConfig: &config.AuthConfig{
			// No provisioners: Cordon authorises issuance itself (tokens,
			// the mTLS channel) and calls Sign directly.
			DisableIssuedAtCheck: true,
			Backdate:             &provisioner.Duration{Duration: time.Minute},
		},
	}
	auth, err := authority.NewEmbedded(
		authority.WithConfig(cfg),
		authority.WithDatabase(adb),
		authority.WithX509RootCerts(root),
		authority.WithX509Signer(inter, interKey),
		authority.WithQuietInit(),
	)
	if err != nil {
		adb.Shutdown()
		return nil, fmt.Errorf("start authority: %w", err)
	}
	c.auth = auth
	return c, nil
}

// Close releases the authority's database.
func (c *CA) Close() error { return c.auth.Shutdown() }

// Root is the root certificate agents pin.
func (c *CA) Root() *x509.Certificate { return c.root }

// Intermediate is the issuing certificate.
func (c *CA) Intermediate() *x509.Certificate { return c.inter }

// RootFingerprint is the SHA-256 of the root certificate, hex.
func (c *CA) RootFingerprint() string { return identity.Fingerprint(c.root) }

// ReadRootFingerprint reads the root's fingerprint from a data dir
// without starting the authority, so it works while serve runs.
func ReadRootFingerprint(dataDir string) (string, error) {
	root, err := readCert(filepath.Join(dataDir, "ca", rootCertFile))
	if err != nil {
		return "", fmt.Errorf("no CA in %s yet (start the server once): %w", dataDir, err)
	}
	return identity.Fingerprint(root), nil
}

// SignDevice issues a device certificate for deviceID from csr, valid
// from now for the configured lifetime.
func (c *CA) SignDevice(ctx context.Context, csr *x509.CertificateRequest, deviceID string) ([]*x509.Certificate, error) {
	// Backdating absorbs clock skew between device and server, but must
	// stay small against short lifetimes or renewal would come at once.
	now := time.Now()
	backdate := min(time.Minute, c.deviceLifetime/10)
	return c.SignDeviceValidity(ctx, csr, deviceID, now.Add(-backdate), now.Add(c.deviceLifetime))
}

// SignDeviceValidity issues a device certificate with explicit validity.
func (c *CA) SignDeviceValidity(ctx context.Context, csr *x509.CertificateRequest, deviceID string, notBefore, notAfter time.Time) ([]*x509.Certificate, error) {
	if err := identity.CheckDeviceCSR(csr); err != nil {
		return nil, err
	}
	modify := provisioner.CertificateModifierFunc(func(cert *x509.Certificate, _ provisioner.SignOptions) error {
		// The device id comes from the server, never from the CSR.
		cert.Subject = pkix.Name{CommonName: deviceID, Organization: []string{"Cordon device"}}
		// CSR extensions are copied into ExtraExtensions, which would
		// override the SANs set here; a device gets none of its own.
		cert.ExtraExtensions = nil
		cert.DNSNames, cert.IPAddresses, cert.EmailAddresses = nil, nil, nil
		cert.URIs = []*url.URL{identity.DeviceURI(deviceID)}
		cert.KeyUsage = x509.KeyUsageDigitalSignature
		cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		cert.NotBefore, cert.NotAfter = notBefore.UTC(), notAfter.UTC()
		return nil
	})
	leave, err := c.enter(ctx)
	if err != nil {
		return nil, err
	}
	defer leave()
	chain, err := c.auth.SignWithContext(ctx, csr, provisioner.SignOptions{}, modify)
	if err != nil {
		return nil, fmt.Errorf("sign device certificate: %w", err)
	}
	return chain, nil
}

// Revoke revokes the certificate with the given serial (decimal string,
// as Cordon stores it) and regenerates the CRL.
func (c *CA) Revoke(ctx context.Context, serial, reason string) error {
	// The authority kept every certificate it signed; revoking "as mTLS"
	// with the certificate skips its one-time-token path, which Cordon
	// does not use (the API caller was authorised already).
	leave, err := c.enter(ctx)
	if err != nil {
		return err
	}
	defer leave()
	crt, err := c.auth.GetDatabase().GetCertificate(serial)
	if err != nil {
		return fmt.Errorf("revoke %s: not issued by this CA: %w", serial, err)
	}
	ctx = provisioner.NewContextWithMethod(ctx, provisioner.RevokeMethod)
	err = c.auth.Revoke(ctx, &authority.RevokeOptions{Serial: serial, Reason: reason, PassiveOnly: true, MTLS: true, Crt: crt})
	if err != nil && strings.Contains(err.Error(), "already revoked") {
		return nil
	}
	return err
}

// IsRevoked reports whether the authority has serial on its revocation list.
func (c *CA) IsRevoked(serial string) (bool, error) {
	leave, _ := c.enter(context.Background())
	defer leave()
	return c.auth.IsRevoked(serial)
}

// CRL returns the current CRL, DER.
func (c *CA) CRL() ([]byte, error) {
	leave, _ := c.enter(context.Background())
	defer leave()
	info, err := c.auth.GetCertificateRevocationList()
	if err != nil {
		return nil, err
	}
	return info.Data, nil
}

// ServerCertificate issues a TLS server certificate for hosts (DNS
// names or IPs), signed by the intermediate, with a fresh P-256 key.
func (c *CA) ServerCertificate(ctx context.Context, hosts []string, lifetime time.Duration) (*x509.Certificate, crypto.Signer, []*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: hosts[0]}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, nil, err
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	modify := provisioner.CertificateModifierFunc(func(cert *x509.Certificate, _ provisioner.SignOptions) error {
		cert.Subject = pkix.Name{CommonName: hosts[0], Organization: []string{"Cordon server"}}
		cert.ExtraExtensions = nil
		cert.DNSNames, cert.IPAddresses, cert.URIs, cert.EmailAddresses = nil, nil, nil, nil
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				cert.IPAddresses = append(cert.IPAddresses, ip)
			} else {
				cert.DNSNames = append(cert.DNSNames, h)
			}
		}
		cert.KeyUsage = x509.KeyUsageDigitalSignature
		cert.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		cert.NotBefore, cert.NotAfter = now.Add(-time.Minute).UTC(), now.Add(lifetime).UTC()
		return nil
	})
	leave, err := c.enter(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	defer leave()
	chain, err := c.auth.SignWithContext(ctx, csr, provisioner.SignOptions{}, modify)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sign server certificate: %w", err)
	}
	return chain[0], key, chain[1:], nil
}

func create(dir string) error {
	now := time.Now()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	rootTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "Cordon Root CA", Organization: []string{"Cordon"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(20, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	root, _ := x509.ParseCertificate(rootDER)
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	interTmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "Cordon Intermediate CA", Organization: []string{"Cordon"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	interDER, err := x509.CreateCertificate(rand.Reader, interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return err
	}
	// Keys first: a crash between files leaves no root.crt, so the next
	// start recreates everything instead of loading half a CA.
	if err := keyfile.Write(filepath.Join(dir, rootKeyFile), rootKey); err != nil {
		return err
	}
	if err := keyfile.Write(filepath.Join(dir, interKeyFile), interKey); err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, interCertFile), pemCert(interDER), 0o644); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, rootCertFile), pemCert(rootDER), 0o644)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	certs, err := identity.ParseChain(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs[0], nil
}
