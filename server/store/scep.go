package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ScepChallenge is a one-time SCEP challenge password for an Apple
// enrollment profile. Hash is the SHA-256 of the challenge: the
// plaintext is in the profile only, so a copy of the database enrolls
// nothing.
type ScepChallenge struct {
	Hash      []byte `gorm:"primaryKey"`
	TokenID   string `gorm:"size:32;index"`
	Owner     string `gorm:"size:256"`
	ExpiresAt time.Time
	// DeviceID is the device the challenge's one certificate was issued
	// to, set with UsedAt.
	DeviceID  string `gorm:"size:36"`
	UsedAt    *time.Time
	CreatedAt time.Time
}

// CreateScepChallenge stores a challenge (by its hash) for enrollment
// token tokenID, with the token's owner and expiry: the challenge lives
// no longer than the token that authorised it. An unknown token is
// ErrTokenBad, an expired one ErrTokenExp.
func (s *Store) CreateScepChallenge(ctx context.Context, tokenID string, hash []byte, now time.Time) (*ScepChallenge, error) {
	var c *ScepChallenge
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		var tok EnrollmentToken
		if err := tx.First(&tok, "id = ?", tokenID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenBad
			}
			return err
		}
		if !now.Before(tok.ExpiresAt) {
			return ErrTokenExp
		}
		// A package's token is on every machine the package reached;
		// a SCEP challenge costs it no use, so it would enroll Apple
		// devices without count.
		if tok.Purpose == TokenPurposeAgentPackage {
			return ErrTokenScope
		}
		c = &ScepChallenge{Hash: hash, TokenID: tok.ID, Owner: tok.Owner, ExpiresAt: tok.ExpiresAt, CreatedAt: now}
		return tx.Create(c).Error
	})
	return c, err
}

// UseScepChallenge marks the challenge whose SHA-256 is hash used by
// deviceID, once:
// an unknown hash is ErrTokenBad, one used before ErrTokenUsed, one whose
// token expired (or was deleted) ErrTokenExp. The row is locked for the
// check, so two requests racing on one challenge cannot both win.
func (s *Store) UseScepChallenge(ctx context.Context, hash []byte, deviceID string, now time.Time) (*ScepChallenge, error) {
	var c ScepChallenge
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx
		if s.dialect == "postgres" {
			q = q.Clauses(clause.Locking{Strength: "UPDATE"})
		}
		if err := q.First(&c, "hash = ?", hash).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenBad
			}
			return err
		}
		if c.UsedAt != nil {
			return ErrTokenUsed
		}
		var tok EnrollmentToken
		if err := tx.First(&tok, "id = ?", c.TokenID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenExp
			}
			return err
		}
		if !now.Before(c.ExpiresAt) || !now.Before(tok.ExpiresAt) {
			return ErrTokenExp
		}
		res := tx.Model(&ScepChallenge{}).Where("hash = ? AND used_at IS NULL", hash).Updates(map[string]any{"used_at": now, "device_id": deviceID})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrTokenUsed
		}
		c.UsedAt, c.DeviceID = &now, deviceID
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// ScepIssuedTo is the used challenge whose certificate went to deviceID:
// what makes an Apple identity the device SCEP named, with the owner of
// the token behind it. A device SCEP issued nothing to is ErrNotFound.
func (s *Store) ScepIssuedTo(ctx context.Context, deviceID string) (*ScepChallenge, error) {
	var c ScepChallenge
	err := s.with(ctx).Where("device_id = ? AND used_at IS NOT NULL", deviceID).Take(&c).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}
