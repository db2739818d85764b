package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/keyfile"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// enrollStore adapts the gorm store to enroll.Store.
type enrollStore struct{ st *store.Store }

func (e enrollStore) CreateToken(ctx context.Context, t enroll.Token) error {
	return e.st.CreateToken(ctx, &store.EnrollmentToken{ID: t.ID, Hash: t.Hash, ExpiresAt: t.ExpiresAt,
		Uses: t.Uses, UsesLeft: t.Uses, Owner: t.Owner, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt})
}

func (e enrollStore) Redeem(ctx context.Context, id string, hash []byte, issue func(enroll.Token) (*enroll.Enrollment, error)) error {
	err := e.st.Enroll(ctx, id, hash, func(t store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
		enr, err := issue(enroll.Token{ID: t.ID, ExpiresAt: t.ExpiresAt, Uses: t.Uses, Owner: t.Owner})
		if err != nil {
			return nil, nil, err
		}
		return newDevice(enr), store.CertificateFor(enr.DeviceID, enr.Chain[0]), nil
	})
	switch {
	case errors.Is(err, store.ErrTokenBad):
		return enroll.ErrUnknownToken
	case errors.Is(err, store.ErrTokenExp):
		return enroll.ErrTokenExpired
	case errors.Is(err, store.ErrTokenUsed):
		return enroll.ErrTokenUsed
	}
	return err
}

func newDevice(enr *enroll.Enrollment) *store.Device {
	f := enr.Facts
	return &store.Device{ID: enr.DeviceID, Name: f.Hostname, Hostname: f.Hostname, Platform: f.Platform,
		OSName: f.OSName, OSVersion: f.OSVersion, AgentVersion: f.AgentVersion, Serial: f.Serial,
		Owner: enr.Owner, EnrolledAt: time.Now().UTC(), Status: store.StatusActive}
}

// enrollAuditor adapts the audit log to enroll.Auditor.
type enrollAuditor struct{ l *audit.Log }

func (a enrollAuditor) Record(ctx context.Context, e enroll.Event) error {
	return a.l.Record(ctx, audit.Entry(e))
}

// caInfo adapts the CA to what the API publishes.
type caInfo struct{ ca *pki.CA }

func (c caInfo) CRL() ([]byte, error) { return c.ca.CRL() }
func (c caInfo) RootPEM() string      { return identity.EncodeChain(c.ca.Root()) }

// devices implements device lifecycle actions for the API.
type devices struct{ s *Server }

// Revoke revokes every certificate of the device, in the store (which the
// gateway checks on every handshake) and in the CA's CRL, then drops its
// live connection.
func (d devices) Revoke(ctx context.Context, deviceID, reason, actor, source string) error {
	s := d.s
	// The store's revocation (which every handshake checks) and its
	// entries commit together, or the device stays as it was (AU-5).
	var certs []store.Certificate
	err := s.Store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if certs, err = tx.RevokeDevice(ctx, deviceID, reason, time.Now().UTC()); err != nil {
			return err
		}
		for _, c := range certs {
			if err := s.Audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: audit.CertRevoked,
				Target: "device:" + deviceID, Outcome: audit.Success, Details: map[string]string{"serial": c.Serial, "reason": reason}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The CRL is the CA's own database, outside the transaction: a
	// failure there is recorded on its own.
	var errs []error
	for _, c := range certs {
		if err := s.CA.Revoke(ctx, c.Serial, reason); err != nil {
			errs = append(errs, err)
			if aerr := s.Audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: audit.CertRevoked,
				Target: "device:" + deviceID, Outcome: audit.Failure,
				Details: map[string]string{"serial": c.Serial, "reason": reason, "step": "crl", "error": err.Error()}}); aerr != nil {
				errs = append(errs, aerr)
			}
		}
	}
	s.gw.Disconnect(deviceID, protocol.CloseRevoked, "certificate revoked")
	return errors.Join(errs...)
}

const commandKeyFile = "command-signing.key"

// loadOrCreateCommandKey returns the server's Ed25519 command-signing key,
// creating it (0600) on first start.
func loadOrCreateCommandKey(dataDir string) (ed25519.PrivateKey, error) {
	return keyfile.Ed25519(filepath.Join(dataDir, commandKeyFile), true)
}

// pusher hands command frames to the gateway, which exists only once the
// server has started.
type pusher struct{ s *Server }

func (p pusher) Send(deviceID string, frame []byte) bool { return p.s.SendToDevice(deviceID, frame) }
