// Package accounts owns the lifecycle of console users (agency policy
// W.3): disabling, re-enabling and changing a role. The console, the API
// and the host command all call this one service, so the rules hold the
// same everywhere: a disabled user cannot sign in and loses every open
// session at once, the last enabled it-admin can be neither disabled nor
// demoted, and every step, refused or done, is audited.
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
	// ErrInvalid is a request the service cannot act on (an unknown role).
	ErrInvalid = errors.New("invalid account change")
)

// Store is what the service reads and changes.
type Store interface {
	GetUser(ctx context.Context, id string) (*store.User, error)
	ChangeUser(ctx context.Context, id string, change func(u *store.User) (store.UserChange, error),
		check func(enabledByRole map[string]int64) error) (*store.User, error)
}

// Auditor records the steps.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
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
	u, err := s.store.ChangeUser(ctx, id, func(u *store.User) (store.UserChange, error) {
		g.saw(u)
		was = u.DisabledAt != nil
		if was {
			// Already off; its sessions are ended again all the same.
			return store.UserChange{EndSessions: true, Ended: &ended}, nil
		}
		return store.UserChange{Set: map[string]any{"disabled_at": at}, EndSessions: true, Ended: &ended}, nil
	}, g.check)
	return u, s.record(ctx, err, actor, source, ActionDisabled, id, u, map[string]string{"was_disabled": fmt.Sprint(was),
		"sessions_ended": fmt.Sprint(ended)})
}

// Enable turns a disabled user back on. A lockout is left as it was.
func (s *Service) Enable(ctx context.Context, id, actor, source string) (*store.User, error) {
	var was bool
	u, err := s.store.ChangeUser(ctx, id, func(u *store.User) (store.UserChange, error) {
		was = u.DisabledAt != nil
		if !was {
			return store.UserChange{}, nil
		}
		return store.UserChange{Set: map[string]any{"disabled_at": nil}}, nil
	}, nil)
	return u, s.record(ctx, err, actor, source, ActionEnabled, id, u, map[string]string{"was_disabled": fmt.Sprint(was)})
}

// SetRole changes a user's role. The user's open sessions end, so the
// new role (fewer rights or more) applies from the next sign-in, with the
// second factor the new role may require.
func (s *Service) SetRole(ctx context.Context, id, role, actor, source string) (*store.User, error) {
	if !auth.ValidRole(role) {
		err := fmt.Errorf("%w: unknown role %q: use it-admin, laso, auditor or user", ErrInvalid, role)
		return nil, s.record(ctx, err, actor, source, ActionRoleChanged, id, nil, map[string]string{"to": role})
	}
	from := ""
	var ended int64
	var g adminGuard
	u, err := s.store.ChangeUser(ctx, id, func(u *store.User) (store.UserChange, error) {
		g.saw(u)
		from = u.Role
		if u.Role == role {
			return store.UserChange{}, nil
		}
		return store.UserChange{Set: map[string]any{"role": role}, EndSessions: true, Ended: &ended}, nil
	}, g.check)
	return u, s.record(ctx, err, actor, source, ActionRoleChanged, id, u, map[string]string{"from": from, "to": role,
		"sessions_ended": fmt.Sprint(ended)})
}

// record audits a step: success, or the refusal with its reason. The
// change's error is returned unless it succeeded and the entry could not
// be written.
func (s *Service) record(ctx context.Context, err error, actor, source, action, id string, u *store.User, details map[string]string) error {
	target := "user-id:" + id
	if u == nil {
		if got, gerr := s.store.GetUser(ctx, id); gerr == nil {
			u = got
		}
	}
	if u != nil {
		target = "user:" + u.Email
	}
	outcome := audit.Success
	switch {
	case errors.Is(err, ErrLastAdmin), errors.Is(err, ErrInvalid):
		outcome = audit.Denied
		details["reason"] = err.Error()
	case errors.Is(err, store.ErrNotFound):
		return err // nothing to audit about an unknown id
	case err != nil:
		outcome = audit.Failure
		details["reason"] = err.Error()
	}
	if aerr := s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: action, Target: target,
		Outcome: outcome, Details: details}); aerr != nil && err == nil {
		return fmt.Errorf("audit %s: %w", action, aerr)
	}
	return err
}
