package store

import (
	"context"
	"errors"
	"strings"

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
