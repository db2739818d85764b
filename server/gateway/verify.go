package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// refusal is a device certificate the CA signed but Cordon no longer
// accepts.
type refusal struct {
	deviceID, serial, reason string
}

func (r *refusal) Error() string { return "device certificate refused: " + r.reason }

// verifyConnection runs after crypto/tls has checked the chain against
// the device CA and the validity period: it refuses what only Cordon's
// records can tell, a certificate never issued to an enrolled device,
// issued to another one, or revoked.
func (g *Gateway) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	serial := identity.Serial(leaf.SerialNumber)
	id, err := identity.DeviceID(leaf)
	if err != nil {
		return &refusal{serial: serial, reason: "not a device certificate"}
	}
	ctx, cancel := context.WithTimeout(g.ctx, 5*time.Second)
	defer cancel()
	rec, err := g.store.HandshakeCertificate(ctx, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &refusal{deviceID: id, serial: serial, reason: "certificate was not issued to an enrolled device"}
	case err != nil:
		return fmt.Errorf("revocation check failed: %w", err)
	case rec.DeviceID != id:
		return &refusal{deviceID: id, serial: serial, reason: "certificate does not belong to this device"}
	case rec.Revoked:
		return &refusal{deviceID: id, serial: serial, reason: "certificate revoked"}
	}
	return nil
}

func (g *Gateway) handshakeFailed(remote string, err error) {
	host, _, _ := net.SplitHostPort(remote)
	e := audit.Entry{Actor: "unknown", Source: host, Action: audit.DeviceRefused, Target: "gateway",
		Outcome: audit.Denied, Details: map[string]string{}}
	var (
		ref *refusal
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		cie x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &ref):
		e.Details["reason"], e.Details["serial"] = ref.reason, ref.serial
		if ref.deviceID != "" {
			e.Actor, e.Target = "device:"+ref.deviceID, "device:"+ref.deviceID
		}
	case errors.As(err, &uae):
		e.Details["reason"] = "certificate not issued by this server's CA"
	case errors.As(err, &cie) && cie.Reason == x509.Expired:
		e.Details["reason"] = "certificate expired or not yet valid"
	default:
		e.Details["reason"] = err.Error()
	}
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		c := cve.UnverifiedCertificates[0]
		e.Details["presented_subject"] = c.Subject.String()
		e.Details["presented_issuer"] = c.Issuer.String()
		e.Details["serial"] = identity.Serial(c.SerialNumber)
		if id, err := identity.DeviceID(c); err == nil {
			e.Actor = "device:" + id
		}
	}
	if errors.Is(err, errResumed) {
		e.Details["tls_resumed"] = "true"
	}
	g.log.Info("agent handshake refused", "remote", remote, "actor", e.Actor, "reason", e.Details["reason"])
	ctx, cancel := context.WithTimeout(g.ctx, g.frameTimeout)
	defer cancel()
	if aerr := g.audit.Record(ctx, e); aerr != nil {
		g.log.Error("audit refused handshake", "err", aerr)
	}
}
