package store

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"

	"gorm.io/gorm"
)

// Key protection levels a device is recorded with (attest.Level*).
const KeyProtectionSoftware = "software"

// EnrollChallenge is the first step of an attested enrollment (see the
// 00013 migration): what the answer is checked against.
type EnrollChallenge struct {
	ID         string    `gorm:"primaryKey;size:36"`
	TokenID    string    `gorm:"size:32;not null"`
	SecretHash []byte    `gorm:"not null"`
	Nonce      []byte    `gorm:"not null"`
	AKPublic   []byte    `gorm:"column:ak_public;not null"`
	Level      string    `gorm:"size:16;not null"`
	EKSHA256   string    `gorm:"column:ek_sha256;size:64;not null"`
	ExpiresAt  time.Time `gorm:"index"`
	UsedAt     *time.Time
	DeviceID   string `gorm:"size:36;not null;default:''"`
	CreatedAt  time.Time
}

// ErrChallengeUsed is an attestation challenge that was used (or burnt)
// before, or expired while its enrollment ran: a replay, or a race lost.
var ErrChallengeUsed = errors.New("attestation challenge already used")

// challengeKeep is how long a spent or expired challenge's row stays
// before a later CreateEnrollChallenge removes it.
const challengeKeep = time.Hour

// CreateEnrollChallenge stores c for the token tokenID whose secret
// hashes to hash, checking the token as Enroll would but consuming
// nothing: ErrTokenBad, ErrTokenExp or ErrTokenUsed. The challenge
// expires no later than the token. Old challenges are removed on the way.
func (s *Store) CreateEnrollChallenge(ctx context.Context, tokenID string, hash []byte, c *EnrollChallenge) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		var tok EnrollmentToken
		if err := tx.First(&tok, "id = ?", tokenID).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrTokenBad
			}
			return err
		}
		switch {
		case subtle.ConstantTimeCompare(tok.Hash, hash) != 1:
			return ErrTokenBad
		case !c.CreatedAt.Before(tok.ExpiresAt):
			return ErrTokenExp
		case tok.UsesLeft <= 0:
			return ErrTokenUsed
		}
		if tok.ExpiresAt.Before(c.ExpiresAt) {
			c.ExpiresAt = tok.ExpiresAt
		}
		c.TokenID = tok.ID
		if err := tx.Where("expires_at < ?", c.CreatedAt.Add(-challengeKeep)).Delete(&EnrollChallenge{}).Error; err != nil {
			return err
		}
		return tx.Create(c).Error
	})
}

// GetEnrollChallenge returns a challenge, ErrNotFound when there is none.
func (s *Store) GetEnrollChallenge(ctx context.Context, id string) (*EnrollChallenge, error) {
	var c EnrollChallenge
	if err := s.with(ctx).First(&c, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// BurnEnrollChallenge marks a challenge used without a device: an answer
// to it was refused, and it is not to be answered again.
func (s *Store) BurnEnrollChallenge(ctx context.Context, id string, at time.Time) error {
	return s.with(ctx).Model(&EnrollChallenge{}).Where("id = ? AND used_at IS NULL", id).Update("used_at", at).Error
}

// useChallenge consumes challenge id of token tokenID for deviceID in
// tx, once, while unexpired at now: ErrChallengeUsed otherwise.
func useChallenge(tx *gorm.DB, id, tokenID, deviceID string, now time.Time) error {
	res := tx.Model(&EnrollChallenge{}).Where("id = ? AND token_id = ? AND used_at IS NULL AND expires_at > ?", id, tokenID, now).
		Updates(map[string]any{"used_at": now, "device_id": deviceID})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected != 1 {
		return ErrChallengeUsed
	}
	return nil
}
