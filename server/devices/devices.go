// Package devices holds a device's lifecycle after enrollment: the record
// an enrollment creates, revocation, and where a device stands as its
// agent shows it. The gateway, the API and the command queue call it;
// it calls the store, the CA and the live connection through the small
// interfaces below.
package devices

import (
	"context"
	"errors"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Store runs a revocation and its audit entries in one transaction.
type Store interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Auditor records security events; RecordTx appends within the
// caller's transaction.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// CRL is the CA's revocation list.
type CRL interface {
	Revoke(ctx context.Context, serial, reason string) error
}

// Dropper closes a device's live connection, if it has one.
type Dropper interface {
	Disconnect(deviceID string, code int, reason string)
}

// Service performs device lifecycle operations.
type Service struct {
	store Store
	audit Auditor
	crl   CRL
	drop  Dropper
	now   func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithClock replaces the clock revocations are timed by (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service.
func New(st Store, auditor Auditor, crl CRL, drop Dropper, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, crl: crl, drop: drop, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Enrolled is the device record an enrollment creates: named after the
// host the agent reported, owned by the token's owner, active from at.
func Enrolled(deviceID, owner string, f protocol.DeviceFacts, at time.Time) *store.Device {
	return &store.Device{ID: deviceID, Name: f.Hostname, Hostname: f.Hostname, Platform: f.Platform,
		OSName: f.OSName, OSVersion: f.OSVersion, AgentVersion: f.AgentVersion, Serial: f.Serial,
		Owner: owner, EnrolledAt: at.UTC(), Status: store.StatusActive}
}

// Revoke revokes every certificate of the device, in the store (which the
// gateway checks on every handshake) and in the CA's CRL, then drops its
// live connection. An unknown device is store.ErrNotFound.
func (s *Service) Revoke(ctx context.Context, deviceID, reason, actor, source string) error {
	// The store's revocation (which every handshake checks) and its
	// entries commit together, or the device stays as it was (AU-5).
	var certs []store.Certificate
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if certs, err = tx.RevokeDevice(ctx, deviceID, reason, s.now().UTC()); err != nil {
			return err
		}
		for _, c := range certs {
			if err := s.audit.RecordTx(ctx, tx, audit.Entry{Actor: actor, Source: source, Action: audit.CertRevoked,
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
	// failure there is recorded on its own, and the device stays revoked
	// (the store is what handshakes check).
	var errs []error
	for _, c := range certs {
		if err := s.crl.Revoke(ctx, c.Serial, reason); err != nil {
			errs = append(errs, err)
			if aerr := s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: audit.CertRevoked,
				Target: "device:" + deviceID, Outcome: audit.Failure,
				Details: map[string]string{"serial": c.Serial, "reason": reason, "step": "crl", "error": err.Error()}}); aerr != nil {
				errs = append(errs, aerr)
			}
		}
	}
	s.drop.Disconnect(deviceID, protocol.CloseRevoked, "certificate revoked")
	return errors.Join(errs...)
}
