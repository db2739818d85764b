package store

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Device status values.
const (
	StatusActive  = "active"
	StatusRevoked = "revoked"
)

// CreateToken stores a new enrollment token.
func (s *Store) CreateToken(ctx context.Context, t *EnrollmentToken) error {
	return s.with(ctx).Create(t).Error
}

// Enroll consumes one use of token id (whose secret hashes to hash) and,
// in the same transaction, calls issue to create the device and its
// certificate. Nothing is written if any step fails.
func (s *Store) Enroll(ctx context.Context, id string, hash []byte, issue func(EnrollmentToken) (*Device, *Certificate, error)) error {
	return s.EnrollAttested(ctx, id, hash, "", issue)
}

// EnrollAttested is Enroll that also consumes the attestation challenge
// challengeID (of the same token) in the transaction, for the device
// issue creates: ErrChallengeUsed when it is used, expired or not the
// token's. An empty challengeID consumes none.
func (s *Store) EnrollAttested(ctx context.Context, id string, hash []byte, challengeID string, issue func(EnrollmentToken) (*Device, *Certificate, error)) error {
	return s.InTx(ctx, func(t *Store) error {
		tx := t.with(ctx)
		var tok EnrollmentToken
		q := tx
		if s.dialect == "postgres" {
			// SQLite's immediate transactions already hold the write lock.
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.First(&tok, "id = ?", id).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenBad
			}
			return err
		}
		if subtle.ConstantTimeCompare(tok.Hash, hash) != 1 {
			return ErrTokenBad
		}
		if !time.Now().Before(tok.ExpiresAt) {
			return ErrTokenExp
		}
		if tok.UsesLeft <= 0 {
			return ErrTokenUsed
		}
		res := tx.Model(&EnrollmentToken{}).Where("id = ? AND uses_left > 0", id).
			Update("uses_left", gorm.Expr("uses_left - 1"))
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return ErrTokenUsed
		}
		dev, cert, err := issue(tok)
		if err != nil {
			return err
		}
		dev.CertSerial = cert.Serial
		if challengeID != "" {
			if err := useChallenge(tx, challengeID, tok.ID, dev.ID, time.Now()); err != nil {
				return err
			}
		}
		if dev.KeyProtection == "" {
			dev.KeyProtection = KeyProtectionSoftware
		}
		if err := tx.Create(dev).Error; err != nil {
			return err
		}
		if err := tx.Create(cert).Error; err != nil {
			return err
		}
		return t.identitiesChanged(ctx, []string{cert.Serial}, []string{dev.ID})
	})
}

// GetDevice returns one device.
func (s *Store) GetDevice(ctx context.Context, id string) (*Device, error) {
	var d Device
	if err := s.with(ctx).First(&d, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &d, nil
}

// ListDevices returns every device, most recently enrolled first.
func (s *Store) ListDevices(ctx context.Context) ([]Device, error) {
	var ds []Device
	err := s.with(ctx).Order("enrolled_at DESC, id").Find(&ds).Error
	return ds, err
}

// MarkConnected records that the gateway accepted a connection, on the
// process whose origin is server (” with one process), which from now
// on owns the online flag. It, MarkDisconnected and UpdateHello run on
// every connect: their statements are written out, not built (see
// SavePosture).
func (s *Store) MarkConnected(ctx context.Context, id, addr string, at time.Time, server string) error {
	return s.with(ctx).Exec("UPDATE devices SET online = ?, last_seen = ?, last_addr = ?, online_server = ? WHERE id = ?",
		true, at, addr, server, id).Error
}

// MarkDisconnected records that the device's connection on process
// server ended. It changes nothing when the flag is another process's:
// the device reconnected there before this connection was found gone,
// and is online.
func (s *Store) MarkDisconnected(ctx context.Context, id string, at time.Time, server string) error {
	return s.with(ctx).Exec("UPDATE devices SET online = ?, last_seen = ? WHERE id = ? AND online_server = ?",
		false, at, id, server).Error
}

// ReapOnline marks offline the devices held by processes that are gone:
// those whose online_server is neither ” (one process; ResetOnline is
// its reset) nor in live, the origins of the processes serving the
// database now. A process killed outright never ended its connections,
// and its devices would be online until they reconnected, which a lost
// device never does. It returns how many it marked.
func (s *Store) ReapOnline(ctx context.Context, live []string) (int64, error) {
	q := s.with(ctx).Model(&Device{}).Where("online = ? AND online_server <> ''", true)
	if len(live) > 0 {
		q = q.Where("online_server NOT IN ?", live)
	}
	res := q.Update("online", false)
	return res.RowsAffected, res.Error
}

// ResetOnline marks every device offline; the server calls it at start,
// since connections do not survive a restart.
func (s *Store) ResetOnline(ctx context.Context) error {
	return s.with(ctx).Model(&Device{}).Where("online = ?", true).Update("online", false).Error
}

// HelloFacts is what an agent says about itself in hello.
type HelloFacts struct {
	Hostname, Platform, AgentVersion string
	CapabilityVersion                int
	// Capabilities are names (protocol.Hello.Check allows no comma in
	// them), stored comma-joined.
	Capabilities []string
}

// UpdateHello records what the agent said about itself on connect.
func (s *Store) UpdateHello(ctx context.Context, id string, f HelloFacts) error {
	return s.with(ctx).Exec(`UPDATE devices SET hostname = ?, platform = ?, agent_version = ?, capability_version = ?, capabilities = ?
		WHERE id = ?`, f.Hostname, f.Platform, f.AgentVersion, f.CapabilityVersion, strings.Join(f.Capabilities, ","), id).Error
}

// AddCertificate records a certificate issued to a device (renewal) and
// makes it the device's current one.
func (s *Store) AddCertificate(ctx context.Context, c *Certificate) error {
	return s.InTx(ctx, func(t *Store) error {
		tx := t.with(ctx)
		if err := tx.Create(c).Error; err != nil {
			return err
		}
		if err := tx.Model(&Device{}).Where("id = ?", c.DeviceID).Update("cert_serial", c.Serial).Error; err != nil {
			return err
		}
		return t.identitiesChanged(ctx, []string{c.Serial}, []string{c.DeviceID})
	})
}

// GetCertificate returns the record of one issued certificate.
func (s *Store) GetCertificate(ctx context.Context, serial string) (*Certificate, error) {
	var c Certificate
	if err := s.with(ctx).First(&c, "serial = ?", serial).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// RevokeDevice marks every unrevoked certificate of the device revoked
// and the device itself revoked; it returns the certificates it revoked.
func (s *Store) RevokeDevice(ctx context.Context, deviceID, reason string, at time.Time) ([]Certificate, error) {
	var certs []Certificate
	err := s.InTx(ctx, func(t *Store) error {
		tx := t.with(ctx)
		var d Device
		if err := tx.First(&d, "id = ?", deviceID).Error; err != nil {
			return notFound(err)
		}
		if err := tx.Where("device_id = ? AND revoked = ?", deviceID, false).Find(&certs).Error; err != nil {
			return err
		}
		if err := tx.Model(&Certificate{}).Where("device_id = ? AND revoked = ?", deviceID, false).
			Updates(map[string]any{"revoked": true, "revoked_at": at, "reason": reason}).Error; err != nil {
			return err
		}
		if err := tx.Model(&Device{}).Where("id = ?", deviceID).Update("status", StatusRevoked).Error; err != nil {
			return err
		}
		serials := make([]string, len(certs))
		for i, c := range certs {
			serials[i] = c.Serial
		}
		return t.identitiesChanged(ctx, serials, []string{deviceID})
	})
	return certs, err
}

// CertificateFor is the record of a certificate issued to deviceID.
func CertificateFor(deviceID string, leaf *x509.Certificate) *Certificate {
	return &Certificate{Serial: leaf.SerialNumber.String(), DeviceID: deviceID,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), IssuedAt: time.Now().UTC()}
}
