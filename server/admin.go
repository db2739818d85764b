package server

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/auditchain"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Admin performs the local administration commands on the server host.
// It opens only the database, never the CA, so it runs beside serve.
type Admin struct {
	Store *store.Store
	Audit *audit.Log
	// Anchor signs and reads audit checkpoints; nil until serve has made
	// the checkpoint key.
	Anchor   *audit.Anchor
	tokens   *enroll.Service
	accounts *accounts.Service
	actor    string
	dataDir  string
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
	a := &Admin{Store: st, Audit: audit.New(st, nil), actor: "local:unknown", dataDir: dataDir}
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
	a.accounts = accounts.New(st, a.Audit)
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
	text, _, err := a.accounts.CreateAPIKey(ctx, name, role, a.actor, "local")
	return text, err
}

// AddUser creates a console user.
func (a *Admin) AddUser(ctx context.Context, email, role, password string) error {
	_, err := a.accounts.AddUser(ctx, email, role, password, a.actor, "local")
	return err
}

// SetPassword changes a console user's password under the policy: not
// the current one nor any of the previous ten. Refusals are audited too.
func (a *Admin) SetPassword(ctx context.Context, email, password string) error {
	return a.byEmail(ctx, email, func(id string) error { return a.accounts.SetPassword(ctx, id, password, a.actor, "local") })
}

// UnlockUser lifts a sign-in lockout from the server host: the way back
// in when the only it-admin is the one locked out.
func (a *Admin) UnlockUser(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, a.accounts.Unlock)
}

// ResetMFA removes a user's second factor and recovery codes (a lost
// phone); an it-admin or LASO enrolls a new one at the next sign-in.
func (a *Admin) ResetMFA(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, a.accounts.ResetMFA)
}

// DisableUser turns a console user off from the host (W.3): no sign-in,
// and every open session ends. The last enabled it-admin is refused.
func (a *Admin) DisableUser(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, a.accounts.Disable)
}

// EnableUser turns a disabled console user back on.
func (a *Admin) EnableUser(ctx context.Context, email string) error {
	return a.lifecycle(ctx, email, a.accounts.Enable)
}

// SetUserRole changes a console user's role; the last enabled it-admin
// cannot be demoted.
func (a *Admin) SetUserRole(ctx context.Context, email, role string) error {
	return a.lifecycle(ctx, email, func(ctx context.Context, id, actor, source string) (*store.User, error) {
		return a.accounts.SetRole(ctx, id, role, actor, source)
	})
}

func (a *Admin) lifecycle(ctx context.Context, email string, do func(ctx context.Context, id, actor, source string) (*store.User, error)) error {
	return a.byEmail(ctx, email, func(id string) error {
		_, err := do(ctx, id, a.actor, "local")
		return err
	})
}

// byEmail runs do on the id of the user the host command named.
func (a *Admin) byEmail(ctx context.Context, email string, do func(id string) error) error {
	u, err := a.Store.GetUserByEmail(ctx, email)
	if err != nil {
		return fmt.Errorf("no user %s: %w", email, err)
	}
	return do(u.ID)
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
