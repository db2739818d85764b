package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
)

// CredentialStore holds API keys and console users.
type CredentialStore interface {
	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	CreateUser(ctx context.Context, u *User) error
}

// CreateAPIKey stores a new API key.
func (s *Store) CreateAPIKey(ctx context.Context, k *APIKey) error {
	return s.with(ctx).Create(k).Error
}

// GetAPIKey returns the key with the given public id.
func (s *Store) GetAPIKey(ctx context.Context, id string) (*APIKey, error) {
	var k APIKey
	if err := s.with(ctx).First(&k, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &k, nil
}

// CreateUser stores a console user; the email must be new.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	err := s.with(ctx).Create(u).Error
	if err != nil && (errors.Is(err, gorm.ErrDuplicatedKey) || strings.Contains(strings.ToLower(err.Error()), "unique")) {
		return ErrConflict
	}
	return err
}

// GetUserByEmail returns one user.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*User, error) {
	var u User
	if err := s.with(ctx).First(&u, "email = ?", email).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// SetPassword replaces a user's password hash and history.
func (s *Store) SetPassword(ctx context.Context, id, hash, history string, at time.Time) error {
	return s.with(ctx).Model(&User{}).Where("id = ?", id).
		Updates(map[string]any{"password_hash": hash, "password_history": history, "password_set_at": at}).Error
}
