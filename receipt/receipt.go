// Package receipt signs and verifies wipe receipts (protocol.WipeReceipt):
// the agent signs one with its identity key before destroying it; the
// server, on arrival, and cordonctl, offline with only Cordon's CA
// certificate, verify it with this one function, so that both reach the
// same verdict for the same reasons. It imports only the standard
// library, protocol and pki/identity, so the agent links no server code
// and an auditor's cordonctl no database.
package receipt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// ErrUnverified is every reason a receipt is not proof. The message after
// it says which check failed.
var ErrUnverified = errors.New("wipe receipt does not verify")

// Sign puts the chain (leaf first, the leaf certifying signer's key) and
// the algorithm into r and signs it with signer, an ECDSA P-256 key (the
// agent's file or TPM key). Everything else must be filled in already:
// the signature covers every other member.
func Sign(r *protocol.WipeReceipt, signer crypto.Signer, chain []*x509.Certificate) error {
	if len(chain) == 0 {
		return errors.New("sign receipt: no certificate chain")
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return errors.New("sign receipt: the identity key is not ECDSA P-256")
	}
	if !pub.Equal(chain[0].PublicKey) {
		return errors.New("sign receipt: the certificate is not for the identity key")
	}
	r.Algorithm = protocol.ReceiptAlgorithm
	r.Chain = make([][]byte, len(chain))
	for i, c := range chain {
		r.Chain[i] = c.Raw
	}
	r.Signature = nil
	msg, err := r.SignedBytes()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(msg)
	sig, err := signer.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign receipt: %w", err)
	}
	r.Signature = sig
	return nil
}

// Options are what a verifier trusts.
type Options struct {
	// Roots is Cordon's CA: the root certificate, from the server's data
	// dir or `cordon-server ca` (required).
	Roots *x509.CertPool
	// At is the time the chain must be valid at; zero means the receipt's
	// signed_at, the device's word for when it signed (the server passes
	// its own clock: the device is connected with that certificate).
	At time.Time
	// DeviceID, when set, is the device the receipt must be for (the
	// server: the device whose connection carried it).
	DeviceID string
}

// Verified is what a receipt that verifies proves about its signer.
type Verified struct {
	DeviceID  string
	CommandID string
	// Serial and Fingerprint name the leaf certificate that signed: the
	// server checks that it issued this serial to this device.
	Serial      string
	Fingerprint string
	NotAfter    time.Time
	// Digest is the SHA-256 of the receipt's canonical encoding, hex: what
	// the audit trail records.
	Digest string
}

// Verify checks r's shape, that its chain leads from a leaf for the
// receipt's device to opts.Roots for client authentication, and that the
// leaf's key signed r. The error wraps ErrUnverified with the reason,
// except for a missing root (a caller's mistake).
func Verify(r *protocol.WipeReceipt, opts Options) (*Verified, error) {
	if opts.Roots == nil {
		return nil, errors.New("verify receipt: no CA root to verify against")
	}
	fail := func(format string, args ...any) (*Verified, error) {
		return nil, fmt.Errorf("%w: %s", ErrUnverified, fmt.Sprintf(format, args...))
	}
	if err := r.Check(); err != nil {
		return fail("%v", err)
	}
	if opts.DeviceID != "" && r.DeviceID != opts.DeviceID {
		return fail("the receipt is for device %s, not %s", r.DeviceID, opts.DeviceID)
	}
	certs := make([]*x509.Certificate, len(r.Chain))
	for i, der := range r.Chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return fail("certificate %d of the chain: %v", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	at := opts.At
	if at.IsZero() {
		at = r.SignedAt
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: opts.Roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fail("the signer's certificate does not chain to the Cordon CA at %s: %v", at.UTC().Format(time.RFC3339), err)
	}
	id, err := identity.DeviceID(leaf)
	if err != nil || id != r.DeviceID || leaf.Subject.CommonName != r.DeviceID {
		return fail("the signer's certificate is for device %q (CN %q), not the receipt's %s", id, leaf.Subject.CommonName, r.DeviceID)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fail("the signer's key is not ECDSA P-256")
	}
	msg, err := r.SignedBytes()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, sum[:], r.Signature) {
		return fail("the signature does not verify with the key of the certificate %s", identity.Serial(leaf.SerialNumber))
	}
	can, err := r.Canonical()
	if err != nil {
		return nil, err
	}
	return &Verified{DeviceID: r.DeviceID, CommandID: r.CommandID, Serial: identity.Serial(leaf.SerialNumber),
		Fingerprint: identity.Fingerprint(leaf), NotAfter: leaf.NotAfter, Digest: Digest(can)}, nil
}

// VerifyFile parses a receipt file (protocol.ParseReceipt: byte for byte
// canonical) and verifies it. A file that does not parse is unverified
// too; the receipt is returned whenever it parsed.
func VerifyFile(data []byte, opts Options) (*protocol.WipeReceipt, *Verified, error) {
	r, err := protocol.ParseReceipt(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnverified, err)
	}
	v, err := Verify(r, opts)
	return r, v, err
}

// Digest is the SHA-256 of a canonical receipt, lowercase hex.
func Digest(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return hex.EncodeToString(sum[:])
}
