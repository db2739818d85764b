package server

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"os/user"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/console"
	"github.com/cordon-mdm/cordon/server/store"
)

// Admin performs the local administration commands on the server host.
// It opens only the database, never the CA, so it runs beside serve.
type Admin struct {
	Store *store.Store
	Audit *audit.Log
	// Anchor signs and reads audit checkpoints; nil until serve has made
	// the checkpoint key.
	Anchor *audit.Anchor
	tokens *enroll.Service
	actor  string
}

// OpenAdmin opens the database of dataDir (or database, when given).
func OpenAdmin(ctx context.Context, dataDir, database string) (*Admin, error) {
	if err := ensureDataDir(dataDir); err != nil {
		return nil, err
	}
	if database == "" {
		database, _ = readDatabaseURL(dataDir)
	}
	st, err := store.Open(ctx, dataDir, database)
	if err != nil {
		return nil, err
	}
	a := &Admin{Store: st, Audit: audit.New(st, nil), actor: "local:unknown"}
	// Only serve creates the checkpoint key; before its first start the
	// host commands verify the chain on its own.
	switch anchor, err := audit.NewAnchor(a.Audit, st, dataDir, false); {
	case err == nil:
		a.Anchor = anchor
	case !errors.Is(err, audit.ErrNoCheckpointKey):
		st.Close()
		return nil, err
	}
	if u, err := user.Current(); err == nil {
		a.actor = "local:" + u.Username
	}
	a.tokens = enroll.New(enrollStore{st}, nil, enrollAuditor{a.Audit})
	return a, nil
}

// AuditCheckpoint signs a checkpoint of the audit chain's head now.
func (a *Admin) AuditCheckpoint(ctx context.Context) (auditchain.Checkpoint, error) {
	if a.Anchor == nil {
		return auditchain.Checkpoint{}, audit.ErrNoCheckpointKey
	}
	return a.Anchor.Checkpoint(ctx)
}

// Close closes the database.
func (a *Admin) Close() error { return a.Store.Close() }

// CreateToken makes an enrollment token.
func (a *Admin) CreateToken(ctx context.Context, ttl time.Duration, uses int, owner string) (string, time.Time, error) {
	return a.tokens.CreateToken(ctx, enroll.TokenRequest{TTL: ttl, Uses: uses, Owner: owner}, a.actor, "local")
}

// CreateAPIKey makes an API key and returns its text (shown once).
func (a *Admin) CreateAPIKey(ctx context.Context, name, role string) (string, error) {
	text, k, err := auth.NewAPIKey(name, role, a.actor)
	if err != nil {
		return "", err
	}
	k.CreatedAt = time.Now().UTC()
	if err := a.audited(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: audit.APIKeyCreated, Target: "apikey:" + name,
		Outcome: audit.Success, Details: map[string]string{"role": role, "key_id": k.ID}}, func(tx *store.Store) error {
		return tx.CreateAPIKey(ctx, k)
	}); err != nil {
		return "", err
	}
	return text, nil
}

// audited makes change and appends e in one transaction: an account
// change without its entry does not happen (AU-5).
func (a *Admin) audited(ctx context.Context, e audit.Entry, change func(tx *store.Store) error) error {
	return a.Store.InTx(ctx, func(tx *store.Store) error {
		if err := change(tx); err != nil {
			return err
		}
		return a.Audit.RecordTx(ctx, tx, e)
	})
}

// AddUser creates a console user.
func (a *Admin) AddUser(ctx context.Context, email, role, password string) error {
	if _, err := mail.ParseAddress(email); err != nil {
		return fmt.Errorf("invalid email %q", email)
	}
	if !auth.ValidRole(role) {
		return fmt.Errorf("unknown role %q: use it-admin, laso, auditor or user", role)
	}
	if err := auth.DefaultPasswordPolicy.Check(email, password, nil); err != nil {
		return err
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	err = a.audited(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: audit.UserCreated,
		Target: "user:" + email, Outcome: audit.Success, Details: map[string]string{"role": role}}, func(tx *store.Store) error {
		return tx.CreateUser(ctx, &store.User{ID: uuid.NewString(), Email: email, Role: role, PasswordHash: hash, CreatedAt: now, PasswordSetAt: &now})
	})
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("a user with email %s already exists", email)
	}
	return err
}

// SetPassword changes a console user's password under the policy: not
// the current one nor any of the previous ten. Refusals are audited too.
func (a *Admin) SetPassword(ctx context.Context, email, password string) error {
	u, err := a.Store.GetUserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("no user %s: %w", email, err)
	}
	hash, hist, err := auth.DefaultPasswordPolicy.NextPassword(u, password)
	if errors.Is(err, auth.ErrPassword) {
		a.Audit.Record(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: audit.PasswordChanged, Target: "user:" + email,
			Outcome: audit.Failure, Details: map[string]string{"reason": err.Error()}})
	}
	if err != nil {
		return err
	}
	return a.audited(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: audit.PasswordChanged, Target: "user:" + email, Outcome: audit.Success},
		func(tx *store.Store) error { return tx.SetPassword(ctx, u.ID, hash, hist, time.Now().UTC()) })
}

// UnlockUser lifts a sign-in lockout from the server host: the way back
// in when the only it-admin is the one locked out.
func (a *Admin) UnlockUser(ctx context.Context, email string) error {
	u, err := a.Store.GetUserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("no user %s: %w", email, err)
	}
	was, err := a.Store.ClearLoginFailures(ctx, u.ID)
	if err != nil {
		return err
	}
	return a.Audit.Record(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: console.ActionUserUnlocked, Target: "user:" + email,
		Outcome: audit.Success, Details: map[string]string{"was_locked": fmt.Sprint(was)}})
}

// ResetMFA removes a user's second factor and recovery codes (a lost
// phone); an it-admin or LASO enrolls a new one at the next sign-in.
func (a *Admin) ResetMFA(ctx context.Context, email string) error {
	u, err := a.Store.GetUserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("no user %s: %w", email, err)
	}
	return a.audited(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: ActionMFAReset, Target: "user:" + email, Outcome: audit.Success},
		func(tx *store.Store) error { return tx.SetTOTP(ctx, u.ID, "", "", 0, "") })
}

// ActionMFAReset is recorded when a user's second factor is removed.
const ActionMFAReset = "user.mfa_reset"

// DisableUser turns a console user off from the host (W.3): no sign-in,
// and every open session ends. The last enabled it-admin is refused.
func (a *Admin) DisableUser(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, accounts.New(a.Store, a.Audit).Disable)
}

// EnableUser turns a disabled console user back on.
func (a *Admin) EnableUser(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, accounts.New(a.Store, a.Audit).Enable)
}

// SetUserRole changes a console user's role; the last enabled it-admin
// cannot be demoted.
func (a *Admin) SetUserRole(ctx context.Context, email, role string) error {
	svc := accounts.New(a.Store, a.Audit)
	return a.lifecycle(ctx, email, func(ctx context.Context, id, actor, source string) (*store.User, error) {
		return svc.SetRole(ctx, id, role, actor, source)
	})
}

func (a *Admin) lifecycle(ctx context.Context, email string, do func(ctx context.Context, id, actor, source string) (*store.User, error)) error {
	u, err := a.Store.GetUserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("no user %s: %w", email, err)
	}
	_, err = do(ctx, u.ID, a.actor, "local")
	return err
}

// RecordTrailVerified audits a verification run on the host (AU-2), as
// the API's and the console's are.
func (a *Admin) RecordTrailVerified(ctx context.Context, res audit.VerifyResult) error {
	details := map[string]string{"ok": fmt.Sprint(res.OK), "entries": fmt.Sprint(res.Entries), "via": "host"}
	if res.Broken != nil {
		details["broken_seq"] = fmt.Sprint(*res.Broken)
	}
	return a.Audit.Record(ctx, audit.Entry{Actor: a.actor, Source: "local", Action: audit.TrailVerified, Target: "audit",
		Outcome: audit.Success, Details: details})
}
