// Creating users, their passwords and second factors, and API keys: the
// operations the host commands, the console and the API share, each
// committed with its audit entry or not at all (AU-5).

package accounts

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// Actions these operations record. ActionUserUnlocked is also written by
// the console's sign-in when a timed lock expires.
const (
	ActionUserCreated = "user.created"
	// ActionPasswordChanged is also written, outcome failure, for a
	// password the policy refused.
	ActionPasswordChanged = "user.password_changed"
	ActionUserUnlocked    = "user.unlocked"
	ActionMFAEnrolled     = "user.mfa_enrolled"
	ActionMFAReset        = "user.mfa_reset"
	ActionAPIKeyCreated   = "api_key.created"
	ActionAPIKeyDisabled  = "api_key.disabled"
)

// refusal keeps the words of the rule that refused (they are shown as
// they are, on the console page or the host command's error) while it
// matches ErrInvalid, or the store's error, for the edges' status.
type refusal struct {
	msg  string
	errs []error
}

func (r *refusal) Error() string   { return r.msg }
func (r *refusal) Unwrap() []error { return r.errs }

// invalid marks err, a rule's refusal, as ErrInvalid.
func invalid(err error) error { return &refusal{msg: err.Error(), errs: []error{ErrInvalid, err}} }

// audited makes change and writes its entry in one transaction.
func (s *Service) audited(ctx context.Context, e audit.Entry, change func(tx *store.Store) error) error {
	return s.store.InTx(ctx, func(tx *store.Store) error {
		if err := change(tx); err != nil {
			return err
		}
		return s.audit.RecordTx(ctx, tx, e)
	})
}

// AddUser creates a console user with a password the policy accepts.
func (s *Service) AddUser(ctx context.Context, email, role, password, actor, source string) (*store.User, error) {
	if _, err := mail.ParseAddress(email); err != nil {
		return nil, invalid(fmt.Errorf("invalid email %q", email))
	}
	if !auth.ValidRole(role) {
		return nil, invalid(fmt.Errorf("unknown role %q: use it-admin, laso, auditor or user", role))
	}
	if err := auth.DefaultPasswordPolicy.Check(email, password, nil); err != nil {
		return nil, invalid(err)
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	u := &store.User{ID: uuid.NewString(), Email: email, Role: role, PasswordHash: hash, CreatedAt: now, PasswordSetAt: &now}
	err = s.audited(ctx, s.entry(actor, source, ActionUserCreated, "user:"+email, audit.Success, map[string]string{"role": role}),
		func(tx *store.Store) error { return tx.CreateUser(ctx, u) })
	if errors.Is(err, store.ErrConflict) {
		return nil, &refusal{msg: fmt.Sprintf("a user with email %s already exists", email), errs: []error{err}}
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// SetPassword gives user id a new password under the policy: not the
// current one nor any of the previous ten. A refusal is audited too. The
// console asks for the current password first; the host command does
// not (it is how an it-admin who forgot theirs gets back in).
func (s *Service) SetPassword(ctx context.Context, id, password, actor, source string) error {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return err
	}
	target := "user:" + u.Email
	hash, history, err := auth.DefaultPasswordPolicy.NextPassword(u, password)
	if errors.Is(err, auth.ErrPassword) {
		// The refusal stands whether or not its entry is written.
		s.audit.Record(ctx, s.entry(actor, source, ActionPasswordChanged, target, audit.Failure, map[string]string{"reason": err.Error()}))
		return invalid(err)
	}
	if err != nil {
		return err
	}
	return s.audited(ctx, s.entry(actor, source, ActionPasswordChanged, target, audit.Success, nil),
		func(tx *store.Store) error { return tx.SetPassword(ctx, id, hash, history, s.now().UTC()) })
}

// Unlock lifts a sign-in lockout (from the Users page, or from the server
// host when the only it-admin is the one locked out).
func (s *Service) Unlock(ctx context.Context, id, actor, source string) (*store.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	details := map[string]string{}
	return u, s.audited(ctx, s.entry(actor, source, ActionUserUnlocked, "user:"+u.Email, audit.Success, details), func(tx *store.Store) error {
		was, err := tx.ClearLoginFailures(ctx, id)
		details["was_locked"] = strconv.FormatBool(was)
		return err
	})
}

// EnrollSecondFactor stores the TOTP secret a user has just proved (step
// is the time step of the code that proved it, so that code cannot be
// used again) with fresh recovery codes, which it returns to be shown
// once. Checking the code is sign-in's part.
func (s *Service) EnrollSecondFactor(ctx context.Context, id, secret, algorithm string, step int64, actor, source string) ([]string, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	codes, stored := auth.NewRecoveryCodes()
	details := map[string]string{"algorithm": algorithm, "recovery_codes": strconv.Itoa(len(codes))}
	if err := s.audited(ctx, s.entry(actor, source, ActionMFAEnrolled, "user:"+u.Email, audit.Success, details),
		func(tx *store.Store) error { return tx.SetTOTP(ctx, id, secret, algorithm, step, stored) }); err != nil {
		return nil, err
	}
	return codes, nil
}

// ResetMFA removes a user's second factor and recovery codes (a lost
// phone); a role that needs one enrolls a new one at the next sign-in.
func (s *Service) ResetMFA(ctx context.Context, id, actor, source string) (*store.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	return u, s.audited(ctx, s.entry(actor, source, ActionMFAReset, "user:"+u.Email, audit.Success, nil),
		func(tx *store.Store) error { return tx.SetTOTP(ctx, id, "", "", 0, "") })
}

// CreateAPIKey makes an API key and returns its text, to be shown once:
// the database keeps a hash.
func (s *Service) CreateAPIKey(ctx context.Context, name, role, actor, source string) (string, *store.APIKey, error) {
	text, k, err := auth.NewAPIKey(name, role, actor)
	if err != nil {
		return "", nil, invalid(err)
	}
	k.CreatedAt = s.now().UTC()
	if err := s.audited(ctx, s.entry(actor, source, ActionAPIKeyCreated, "apikey:"+name, audit.Success,
		map[string]string{"role": role, "key_id": k.ID}), func(tx *store.Store) error { return tx.CreateAPIKey(ctx, k) }); err != nil {
		return "", nil, err
	}
	return text, k, nil
}

// DisableAPIKey turns an API key off for good.
func (s *Service) DisableAPIKey(ctx context.Context, id, actor, source string) error {
	return s.audited(ctx, s.entry(actor, source, ActionAPIKeyDisabled, "apikey-id:"+id, audit.Success, nil),
		func(tx *store.Store) error { return tx.DisableAPIKey(ctx, id) })
}
