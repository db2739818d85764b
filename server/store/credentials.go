package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"gorm.io/gorm"
)

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

// GetUser returns one user by id.
func (s *Store) GetUser(ctx context.Context, id string) (*User, error) {
	var u User
	if err := s.with(ctx).First(&u, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// ListUsers returns every console user, by email.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	var us []User
	return us, s.with(ctx).Order("email").Find(&us).Error
}

// ListAPIKeys returns every API key (hashes included; callers show none).
func (s *Store) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var ks []APIKey
	return ks, s.with(ctx).Order("created_at").Find(&ks).Error
}

// DisableAPIKey turns a key off for good.
func (s *Store) DisableAPIKey(ctx context.Context, id string) error {
	res := s.with(ctx).Model(&APIKey{}).Where("id = ?", id).Update("disabled", true)
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return res.Error
}

// LoginFailed counts one failed sign-in. Failures before windowStart (nil:
// none expire) no longer count; reaching threshold locks the account.
// The counting is done by the database so that parallel guesses cannot
// slip past the threshold. lockedNow is true for the failure that locked.
func (s *Store) LoginFailed(ctx context.Context, id string, at time.Time, windowStart *time.Time, threshold int) (u *User, lockedNow bool, err error) {
	err = s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if windowStart != nil {
			if err := tx.Model(&User{}).Where("id = ? AND first_failed_at < ?", id, *windowStart).
				Updates(map[string]any{"failed_logins": 0, "first_failed_at": nil}).Error; err != nil {
				return err
			}
		}
		if err := tx.Model(&User{}).Where("id = ? AND first_failed_at IS NULL", id).Update("first_failed_at", at).Error; err != nil {
			return err
		}
		if err := tx.Model(&User{}).Where("id = ?", id).Update("failed_logins", gorm.Expr("failed_logins + 1")).Error; err != nil {
			return err
		}
		res := tx.Model(&User{}).Where("id = ? AND failed_logins >= ? AND locked_at IS NULL", id, threshold).Update("locked_at", at)
		if res.Error != nil {
			return res.Error
		}
		lockedNow = res.RowsAffected == 1
		u = &User{}
		return notFound(tx.First(u, "id = ?", id).Error)
	})
	return u, lockedNow, err
}

// ClearLoginFailures resets the failure count and lifts a lock (a
// successful sign-in, an it-admin's unlock or an expired v5.8 lock). It
// reports whether the account was locked.
func (s *Store) ClearLoginFailures(ctx context.Context, id string) (wasLocked bool, err error) {
	err = s.with(ctx).Transaction(func(tx *gorm.DB) error {
		var u User
		if err := tx.First(&u, "id = ?", id).Error; err != nil {
			return notFound(err)
		}
		wasLocked = u.LockedAt != nil
		return tx.Model(&User{}).Where("id = ?", id).
			Updates(map[string]any{"failed_logins": 0, "first_failed_at": nil, "locked_at": nil}).Error
	})
	return wasLocked, err
}

// SetTOTP stores a confirmed second factor and its recovery codes;
// step is the step of the code that confirmed it, already used.
func (s *Store) SetTOTP(ctx context.Context, id, secret, algorithm string, step int64, recovery string) error {
	return s.with(ctx).Model(&User{}).Where("id = ?", id).Updates(map[string]any{"totp_secret": secret,
		"totp_algorithm": algorithm, "totp_last_step": step, "recovery_codes": recovery}).Error
}

// UseTOTPStep accepts a code's time step once: false when that step or a
// later one was already used (a replayed code).
func (s *Store) UseTOTPStep(ctx context.Context, id string, step int64) (bool, error) {
	res := s.with(ctx).Model(&User{}).Where("id = ? AND totp_last_step < ?", id, step).Update("totp_last_step", step)
	return res.RowsAffected == 1, res.Error
}

// ReplaceRecoveryCodes swaps the recovery codes only if they are still
// old, so two uses of one code cannot both succeed.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, id, old, new string) (bool, error) {
	res := s.with(ctx).Model(&User{}).Where("id = ? AND recovery_codes = ?", id, old).Update("recovery_codes", new)
	return res.RowsAffected == 1, res.Error
}

// CreateSession stores a new console session.
func (s *Store) CreateSession(ctx context.Context, se *Session) error {
	return s.with(ctx).Create(se).Error
}

// GetSession returns the session with the given hashed id.
func (s *Store) GetSession(ctx context.Context, id string) (*Session, error) {
	var se Session
	if err := s.with(ctx).First(&se, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &se, nil
}

// SaveSession writes a session back (stage, last activity, pending MFA).
func (s *Store) SaveSession(ctx context.Context, se *Session) error {
	return s.with(ctx).Save(se).Error
}

// DeleteSession ends a session; false when it was already gone (so of
// two who end it, one records it).
func (s *Store) DeleteSession(ctx context.Context, id string) (bool, error) {
	res := s.with(ctx).Delete(&Session{}, "id = ?", id)
	return res.RowsAffected == 1, res.Error
}

// SessionsIdleSince returns sessions last active before t or created
// before created.
func (s *Store) SessionsIdleSince(ctx context.Context, t, created time.Time) ([]Session, error) {
	var ss []Session
	return ss, s.with(ctx).Where("last_seen < ? OR created_at < ?", t, created).Limit(1000).Find(&ss).Error
}

// UserChange is what a ChangeUser callback asks for: the columns to set
// (none: nothing changes) and whether the user's sessions end; Ended,
// when given, receives how many did.
type UserChange struct {
	Set         map[string]any
	EndSessions bool
	Ended       *int64
}

// userChangeLock is the PostgreSQL advisory lock that serialises account
// changes, so two it-admins disabling each other at once cannot both see
// the other still enabled.
const userChangeLock = 0x636f7264 // "cord"

// ChangeUser changes one user in a transaction: change sees the current
// row and says what to set; check (when given) then sees the number of
// enabled users per role after the change and may refuse it, which rolls
// everything back. It returns the user as changed.
func (s *Store) ChangeUser(ctx context.Context, id string, change func(u *User) (UserChange, error),
	check func(enabledByRole map[string]int64) error) (*User, error) {
	var out User
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", userChangeLock).Error; err != nil {
				return err
			}
		} else if err := tx.Exec("UPDATE users SET role = role WHERE id = ?", id).Error; err != nil {
			// SQLite: take the write lock before reading, so another
			// process's change waits instead of failing to upgrade.
			return err
		}
		if err := tx.First(&out, "id = ?", id).Error; err != nil {
			return notFound(err)
		}
		c, err := change(&out)
		if err != nil {
			return err
		}
		if len(c.Set) > 0 {
			if err := tx.Model(&User{}).Where("id = ?", id).Updates(c.Set).Error; err != nil {
				return err
			}
		}
		if c.EndSessions {
			res := tx.Delete(&Session{}, "user_id = ?", id)
			if res.Error != nil {
				return res.Error
			}
			if c.Ended != nil {
				*c.Ended = res.RowsAffected
			}
		}
		if check != nil && len(c.Set) > 0 {
			var rows []struct {
				Role string
				N    int64
			}
			if err := tx.Model(&User{}).Select("role, count(*) AS n").Where("disabled_at IS NULL").Group("role").Scan(&rows).Error; err != nil {
				return err
			}
			counts := map[string]int64{}
			for _, r := range rows {
				counts[r.Role] = r.N
			}
			if err := check(counts); err != nil {
				return err
			}
		}
		out = User{}
		return tx.First(&out, "id = ?", id).Error
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}
