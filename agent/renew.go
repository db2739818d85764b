package agent

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
)

// maybeRenew asks for a new certificate once two thirds of the current
// one's lifetime has passed. The key stays the same (it may live in a TPM).
func (s *session) maybeRenew() {
	a := s.a
	cert, err := a.dir.Certificate()
	if err != nil {
		return
	}
	leaf := cert.Leaf
	a.setStatus(func(st *state.Status) { t := leaf.NotAfter.UTC(); st.CertExpires = &t })
	renewAt := leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	if time.Now().Before(renewAt) {
		return
	}
	// The same key signs the new CSR: a TPM key stays in the TPM.
	ks, err := a.dir.KeyStore()
	if err != nil {
		return
	}
	signer, err := ks.Signer()
	if err != nil {
		a.log.Warn("renewal: identity key unavailable", "err", err)
		return
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.cfg.DeviceID}}, signer)
	if err != nil {
		return
	}
	s.renewID = uuid.NewString()
	if err := s.write(protocol.TypeRenew, s.renewID, protocol.Renew{CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))}); err != nil {
		a.log.Warn("renew request not sent", "err", err)
	}
}

func (s *session) installRenewed(chainPEM string) error {
	a := s.a
	chain, err := identity.ParseChain([]byte(chainPEM))
	if err != nil {
		return err
	}
	ks, err := a.dir.KeyStore()
	if err != nil {
		return err
	}
	signer, err := ks.Signer()
	if err != nil {
		return err
	}
	roots, err := a.dir.Roots()
	if err != nil {
		return err
	}
	if err := identity.VerifyDeviceChain(chain, roots, signer.Public(), a.cfg.DeviceID); err != nil {
		return err
	}
	if err := a.dir.SaveCertificate(chainPEM); err != nil {
		return err
	}
	t := chain[0].NotAfter.UTC()
	a.setStatus(func(st *state.Status) { st.CertExpires = &t })
	return nil
}
