package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/keyfile"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/devices"
	"github.com/cordon-mdm/cordon/server/gateway"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Type adaptation between the services and what their callers declare;
// the rules themselves live in the services.

// enrollStore adapts the gorm store to enroll.Store.
type enrollStore struct{ st *store.Store }

func (e enrollStore) CreateToken(ctx context.Context, t enroll.Token) error {
	return e.st.CreateToken(ctx, &store.EnrollmentToken{ID: t.ID, Hash: t.Hash, ExpiresAt: t.ExpiresAt,
		Uses: t.Uses, UsesLeft: t.Uses, Owner: t.Owner, CreatedBy: t.CreatedBy, CreatedAt: t.CreatedAt, Purpose: t.Purpose})
}

func (e enrollStore) Redeem(ctx context.Context, id string, hash []byte, challengeID string, issue func(enroll.Token) (*enroll.Enrollment, error)) error {
	err := e.st.EnrollAttested(ctx, id, hash, challengeID, func(t store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
		enr, err := issue(enroll.Token{ID: t.ID, ExpiresAt: t.ExpiresAt, Uses: t.Uses, Owner: t.Owner, Purpose: t.Purpose})
		if err != nil {
			return nil, nil, err
		}
		d := devices.Enrolled(enr.DeviceID, enr.Owner, enr.Facts, time.Now())
		d.KeyProtection, d.EKSHA256 = enr.KeyProtection, enr.EKHash
		return d, store.CertificateFor(enr.DeviceID, enr.Chain[0]), nil
	})
	return enrollErr(err)
}

func (e enrollStore) CreateChallenge(ctx context.Context, tokenID string, hash []byte, c *enroll.Challenge) error {
	row := &store.EnrollChallenge{ID: c.ID, SecretHash: c.SecretHash, Nonce: c.Nonce, AKPublic: c.AKPublic,
		Level: c.Level, EKSHA256: c.EKHash, ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt}
	if err := enrollErr(e.st.CreateEnrollChallenge(ctx, tokenID, hash, row)); err != nil {
		return err
	}
	c.TokenID, c.ExpiresAt = row.TokenID, row.ExpiresAt
	return nil
}

func (e enrollStore) Challenge(ctx context.Context, id string) (*enroll.Challenge, error) {
	c, err := e.st.GetEnrollChallenge(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, enroll.ErrAttestReplay
	}
	if err != nil {
		return nil, err
	}
	return &enroll.Challenge{ID: c.ID, TokenID: c.TokenID, SecretHash: c.SecretHash, Nonce: c.Nonce, AKPublic: c.AKPublic,
		Level: c.Level, EKHash: c.EKSHA256, ExpiresAt: c.ExpiresAt, CreatedAt: c.CreatedAt, UsedAt: c.UsedAt}, nil
}

func (e enrollStore) BurnChallenge(ctx context.Context, id string) error {
	return e.st.BurnEnrollChallenge(ctx, id, time.Now())
}

// enrollErr is a store refusal as enroll's.
func enrollErr(err error) error {
	switch {
	case errors.Is(err, store.ErrChallengeUsed):
		return enroll.ErrAttestReplay
	case errors.Is(err, store.ErrTokenBad):
		return enroll.ErrUnknownToken
	case errors.Is(err, store.ErrTokenExp):
		return enroll.ErrTokenExpired
	case errors.Is(err, store.ErrTokenUsed):
		return enroll.ErrTokenUsed
	}
	return err
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

// agentIncidents is reporting from a device and the device's standing as
// the gateway sees them: the services' refusals become the gateway's,
// which the agent drops rather than resends.
type agentIncidents struct {
	incidents *incidents.Service
	standing  *devices.Standing
}

func (a agentIncidents) Report(ctx context.Context, from, remote, frameID string, r protocol.IncidentReport, clockAhead time.Duration) (string, error) {
	inc, err := a.incidents.ReportFromDevice(ctx, from, remote, frameID, r, clockAhead)
	if errors.Is(err, incidents.ErrForbidden) || errors.Is(err, incidents.ErrInvalid) {
		return "", fmt.Errorf("%w: %v", gateway.ErrRefused, err)
	}
	if err != nil {
		return "", err
	}
	return inc.ID, nil
}

func (a agentIncidents) State(ctx context.Context, deviceID string) (protocol.DeviceState, error) {
	return a.standing.State(ctx, deviceID)
}

// agentCompliance is the compliance service as the gateway sees it, with
// the same mapping of refusals.
type agentCompliance struct{ *compliance.Service }

func (a agentCompliance) AgentRequest(ctx context.Context, deviceID, remote, frameID string, r protocol.BluetoothRequest) (string, error) {
	id, err := a.Service.AgentRequest(ctx, deviceID, remote, frameID, r)
	if errors.Is(err, compliance.ErrRefused) || errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", gateway.ErrRefused, err)
	}
	return id, err
}

// reportClocks gives the audit review an incident's IR-6 reporting clock.
type reportClocks struct {
	store     *store.Store
	incidents *incidents.Service
}

func (r reportClocks) clock(ctx context.Context, id string) (incidents.Reporting, error) {
	inc, err := r.store.GetIncident(ctx, id)
	if err != nil {
		return incidents.Reporting{}, err
	}
	ns, err := r.store.IncidentNotifications(ctx, id)
	if err != nil {
		return incidents.Reporting{}, err
	}
	return r.incidents.ReportClock(inc, ns), nil
}

const commandKeyFile = "command-signing.key"

// loadOrCreateCommandKey returns the server's Ed25519 command-signing key,
// creating it (0600) on first start.
func loadOrCreateCommandKey(dataDir string) (ed25519.PrivateKey, error) {
	return keyfile.Ed25519(filepath.Join(dataDir, commandKeyFile), true)
}
