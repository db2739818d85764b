// Package accounts owns console users and API keys: creating a user,
// passwords, second factors, unlocking, the lifecycle of agency policy
// W.3 (disabling, re-enabling, changing a role) and API keys. The
// console, the API and the host commands all call this one service, so
// the rules hold the same everywhere: a password follows the policy, a
// disabled user cannot sign in and loses every open session at once, the
// last enabled it-admin can be neither disabled nor demoted, and every
// change commits with its audit entry or not at all (AU-5).
//
// Signing in (the password check, lockouts, sessions, the second factor's
// code) is the console's: it is how a browser proves who it is, not a
// change to an account.
package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// Actions this package records.
const (
	ActionDisabled    = "user.disabled"
	ActionEnabled     = "user.enabled"
	ActionRoleChanged = "user.role_changed"
)

var (
	// ErrLastAdmin refuses a change that would leave no enabled it-admin:
	// nobody could then manage accounts from the console or the API.
	ErrLastAdmin = errors.New("the last enabled it-admin cannot be disabled or demoted; make another user it-admin first")
	// ErrInvalid is a request the service cannot act on: an unknown role,
	// an email that is not one, a password or API key name the rules refuse.
	ErrInvalid = errors.New("invalid account change")
)

// Store is what the service reads and changes. A change runs inside
// InTx, so it commits with its audit entry or not at all (AU-5).
type Store interface {
	GetUser(ctx context.Context, id string) (*store.User, error)
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Auditor records the steps: a change's entry within its transaction,
// a refusal's on its own.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// change is one account change: what to set, the rule checked after it,
// and the details its audit entry carries (filled in by the change).
type change struct {
	action  string
	apply   func(u *store.User) (store.UserChange, error)
	check   func(enabledByRole map[string]int64) error
	details map[string]string
	// ended, when set, counts the sessions the change ended; it is in
	// the details as sessions_ended.
	ended *int64
}

// run applies c to user id and writes its entry in the same transaction;
// a refusal is audited after the rollback. If the entry cannot be
// written the change does not happen.
func (s *Service) run(ctx context.Context, id, actor, source string, c change) (*store.User, error) {
	var u *store.User
	err := s.store.InTx(ctx, func(tx *store.Store) error {
		var err error
		if u, err = tx.ChangeUser(ctx, id, c.apply, c.check); err != nil {
			return err
		}
		if c.ended != nil {
			c.details["sessions_ended"] = fmt.Sprint(*c.ended)
		}
		return s.audit.RecordTx(ctx, tx, s.entry(actor, source, c.action, "user:"+u.Email, audit.Success, c.details))
	})
	if err == nil || errors.Is(err, audit.ErrUnavailable) {
		return u, err
	}
	return nil, s.refused(ctx, err, actor, source, c.action, id, c.details)
}

// Service changes accounts.
type Service struct {
	store Store
	audit Auditor
	now   func() time.Time
}

// Option configures the service.
type Option func(*Service)

// WithClock replaces the clock that stamps DisabledAt (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New returns the service.
func New(st Store, a Auditor, opts ...Option) *Service {
	s := &Service{store: st, audit: a, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// adminGuard is the rule checked inside the change's transaction, after
// the change: when the user was an enabled it-admin, at least one enabled
// it-admin remains. (A server whose users include no it-admin at all can
// still manage its other accounts.)
type adminGuard struct{ wasAdmin bool }

func (g *adminGuard) saw(u *store.User) {
	g.wasAdmin = u.Role == auth.RoleITAdmin && u.DisabledAt == nil
}

func (g *adminGuard) check(enabled map[string]int64) error {
	if g.wasAdmin && enabled[auth.RoleITAdmin] < 1 {
		return ErrLastAdmin
	}
	return nil
}

// Disable turns a user off: sign-in is refused and every session of the
// user ends in the same transaction.
func (s *Service) Disable(ctx context.Context, id, actor, source string) (*store.User, error) {
	at := s.now().UTC()
	var was bool
	var ended int64
	var g adminGuard
	details := map[string]string{}
	return s.run(ctx, id, actor, source, change{action: ActionDisabled, check: g.check, details: details, ended: &ended,
		apply: func(u *store.User) (store.UserChange, error) {
			g.saw(u)
			was = u.DisabledAt != nil
			details["was_disabled"] = fmt.Sprint(was)
			if was {
				// Already off; its sessions are ended again all the same.
				return store.UserChange{EndSessions: true, Ended: &ended}, nil
			}
			return store.UserChange{Set: map[string]any{"disabled_at": at}, EndSessions: true, Ended: &ended}, nil
		}})
}

// Enable turns a disabled user back on. A lockout is left as it was.
func (s *Service) Enable(ctx context.Context, id, actor, source string) (*store.User, error) {
	details := map[string]string{}
	return s.run(ctx, id, actor, source, change{action: ActionEnabled, details: details,
		apply: func(u *store.User) (store.UserChange, error) {
			was := u.DisabledAt != nil
			details["was_disabled"] = fmt.Sprint(was)
			if !was {
				return store.UserChange{}, nil
			}
			return store.UserChange{Set: map[string]any{"disabled_at": nil}}, nil
		}})
}

// SetRole changes a user's role. The user's open sessions end, so the
// new role (fewer rights or more) applies from the next sign-in, with the
// second factor the new role may require.
func (s *Service) SetRole(ctx context.Context, id, role, actor, source string) (*store.User, error) {
	if !auth.ValidRole(role) {
		err := fmt.Errorf("%w: unknown role %q: use it-admin, laso, auditor or user", ErrInvalid, role)
		return nil, s.refused(ctx, err, actor, source, ActionRoleChanged, id, map[string]string{"to": role})
	}
	var ended int64
	var g adminGuard
	details := map[string]string{"to": role}
	return s.run(ctx, id, actor, source, change{action: ActionRoleChanged, check: g.check, details: details, ended: &ended,
		apply: func(u *store.User) (store.UserChange, error) {
			g.saw(u)
			details["from"] = u.Role
			if u.Role == role {
				return store.UserChange{}, nil
			}
			return store.UserChange{Set: map[string]any{"role": role}, EndSessions: true, Ended: &ended}, nil
		}})
}

func (s *Service) entry(actor, source, action, target, outcome string, details map[string]string) audit.Entry {
	return audit.Entry{Actor: actor, Source: source, Action: action, Target: target, Outcome: outcome, Details: details}
}

// refused audits a change that did not happen, with its reason, and
// returns err (an unknown id is not audited: there is nobody to name).
func (s *Service) refused(ctx context.Context, err error, actor, source, action, id string, details map[string]string) error {
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	target := "user-id:" + id
	if u, gerr := s.store.GetUser(ctx, id); gerr == nil {
		target = "user:" + u.Email
	}
	outcome := audit.Failure
	if errors.Is(err, ErrLastAdmin) || errors.Is(err, ErrInvalid) {
		outcome = audit.Denied
	}
	details["reason"] = err.Error()
	s.audit.Record(ctx, s.entry(actor, source, action, target, outcome, details))
	return err
}
