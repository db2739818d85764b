package accounts_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

const goodPassword = "correct horse battery staple 42"

func newService(t *testing.T) (*accounts.Service, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return accounts.New(st, audit.New(st, nil)), st
}

// entries are the trail's entries of action, with their details.
func entries(t *testing.T, st *store.Store, action string) []map[string]string {
	t.Helper()
	es, err := st.ListAudit(context.Background(), store.AuditQuery{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, e := range es {
		d := map[string]string{}
		if e.Details != "" {
			if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
				t.Fatal(err)
			}
		}
		d["=actor"], d["=target"], d["=outcome"] = e.Actor, e.Target, e.Outcome
		out = append(out, d)
	}
	return out
}

func TestAddUser(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.AddUser(ctx, "laso@pd.example", "laso", goodPassword, "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetUserByEmail(ctx, "laso@pd.example"); err != nil || got.ID != u.ID || !auth.CheckPassword(got.PasswordHash, goodPassword) || got.PasswordSetAt == nil {
		t.Fatalf("stored user: %+v, %v", got, err)
	}
	if es := entries(t, st, accounts.ActionUserCreated); len(es) != 1 || es[0]["role"] != "laso" || es[0]["=target"] != "user:laso@pd.example" || es[0]["=outcome"] != audit.Success {
		t.Fatalf("user.created entries: %v", es)
	}
	for name, c := range map[string]struct{ email, role, password string }{
		"bad email":      {"not an email", "laso", goodPassword},
		"unknown role":   {"x@pd.example", "boss", goodPassword},
		"short password": {"x@pd.example", "laso", "short"},
	} {
		if _, err := svc.AddUser(ctx, c.email, c.role, c.password, "local:root", "local"); !errors.Is(err, accounts.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	_, err = svc.AddUser(ctx, "laso@pd.example", "user", goodPassword, "local:root", "local")
	if !errors.Is(err, store.ErrConflict) || err.Error() != "a user with email laso@pd.example already exists" {
		t.Fatalf("second user of one email: %v", err)
	}
	if us, _ := st.ListUsers(ctx); len(us) != 1 {
		t.Fatalf("refused users were stored: %+v", us)
	}
	if es := entries(t, st, accounts.ActionUserCreated); len(es) != 1 {
		t.Fatalf("a refused user was audited as created: %v", es)
	}
}

func TestSetPassword(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.AddUser(ctx, "it@pd.example", "it-admin", goodPassword, "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	next := "another horse battery staple 43"
	if err := svc.SetPassword(ctx, u.ID, next, "user:it@pd.example", "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetUser(ctx, u.ID); !auth.CheckPassword(got.PasswordHash, next) {
		t.Fatal("the new password does not sign in")
	}
	// The previous one may not come back; the refusal is audited.
	err = svc.SetPassword(ctx, u.ID, goodPassword, "user:it@pd.example", "10.0.0.9")
	if !errors.Is(err, accounts.ErrInvalid) || !errors.Is(err, auth.ErrPassword) {
		t.Fatalf("reusing a password: %v", err)
	}
	if got, _ := st.GetUser(ctx, u.ID); !auth.CheckPassword(got.PasswordHash, next) {
		t.Fatal("a refused password replaced the current one")
	}
	if err := svc.SetPassword(ctx, "no-such-id", next, "local:root", "local"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	es := entries(t, st, accounts.ActionPasswordChanged)
	if len(es) != 2 || es[0]["=outcome"] != audit.Success || es[1]["=outcome"] != audit.Failure || es[1]["reason"] == "" ||
		es[0]["=target"] != "user:it@pd.example" || es[0]["=actor"] != "user:it@pd.example" {
		t.Fatalf("password entries (success, failure; none for an unknown user): %v", es)
	}
}

func TestUnlock(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.AddUser(ctx, "it@pd.example", "it-admin", goodPassword, "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, _, err := st.LoginFailed(ctx, u.ID, time.Now(), nil, 3); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := st.GetUser(ctx, u.ID); got.LockedAt == nil {
		t.Fatal("three failures of three did not lock")
	}
	if _, err := svc.Unlock(ctx, u.ID, "local:root", "local"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetUser(ctx, u.ID); got.LockedAt != nil || got.FailedLogins != 0 {
		t.Fatalf("still locked: %+v", got)
	}
	if _, err := svc.Unlock(ctx, u.ID, "local:root", "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Unlock(ctx, "no-such-id", "local:root", "local"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if es := entries(t, st, accounts.ActionUserUnlocked); len(es) != 2 || es[0]["was_locked"] != "true" || es[1]["was_locked"] != "false" {
		t.Fatalf("unlock entries: %v", es)
	}
}

func TestSecondFactor(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.AddUser(ctx, "laso@pd.example", "laso", goodPassword, "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := auth.NewTOTPSecret()
	if err != nil {
		t.Fatal(err)
	}
	codes, err := svc.EnrollSecondFactor(ctx, u.ID, secret, auth.TOTPAlgorithm(), 42, "user:laso@pd.example", "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetUser(ctx, u.ID)
	if got.TOTPSecret != secret || auth.RecoveryCodesLeft(got.RecoveryCodes) != len(codes) || len(codes) == 0 {
		t.Fatalf("enrolled: %+v, %d codes", got, len(codes))
	}
	// The step that proved the secret cannot be used again.
	if fresh, _ := st.UseTOTPStep(ctx, u.ID, 42); fresh {
		t.Fatal("the enrolment's own code step was accepted again")
	}
	if _, err := svc.EnrollSecondFactor(ctx, "no-such-id", secret, auth.TOTPAlgorithm(), 1, "local:root", "local"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := svc.ResetMFA(ctx, u.ID, "local:root", "local"); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetUser(ctx, u.ID); got.TOTPSecret != "" || got.RecoveryCodes != "" {
		t.Fatalf("reset left a factor: %+v", got)
	}
	if es := entries(t, st, accounts.ActionMFAEnrolled); len(es) != 1 || es[0]["algorithm"] != auth.TOTPAlgorithm() || es[0]["=target"] != "user:laso@pd.example" {
		t.Fatalf("enrolment entries: %v", es)
	}
	if es := entries(t, st, accounts.ActionMFAReset); len(es) != 1 || es[0]["=actor"] != "local:root" {
		t.Fatalf("reset entries: %v", es)
	}
}

func TestAPIKeys(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	text, k, err := svc.CreateAPIKey(ctx, "siem", "auditor", "user:it@pd.example", "10.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := auth.Authenticate(ctx, st, text); err != nil || p.Role != "auditor" {
		t.Fatalf("the new key does not authenticate: %+v, %v", p, err)
	}
	for name, c := range map[string]struct{ name, role string }{"unknown role": {"siem2", "boss"}, "bad name": {"two words", "auditor"}} {
		if _, _, err := svc.CreateAPIKey(ctx, c.name, c.role, "user:it@pd.example", "10.0.0.9"); !errors.Is(err, accounts.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := svc.DisableAPIKey(ctx, k.ID, "user:it@pd.example", "10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(ctx, st, text); err == nil {
		t.Fatal("a disabled key still authenticates")
	}
	if err := svc.DisableAPIKey(ctx, "no-such-key", "user:it@pd.example", "10.0.0.9"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v", err)
	}
	if es := entries(t, st, accounts.ActionAPIKeyCreated); len(es) != 1 || es[0]["key_id"] != k.ID || es[0]["role"] != "auditor" || es[0]["=target"] != "apikey:siem" {
		t.Fatalf("creation entries (none for a refused key): %v", es)
	}
	if es := entries(t, st, accounts.ActionAPIKeyDisabled); len(es) != 1 || es[0]["=target"] != "apikey-id:"+k.ID {
		t.Fatalf("disable entries (none for an unknown key): %v", es)
	}
}

// TestNoChangeWithoutItsEntry (AU-5): when the trail cannot be written,
// every operation is refused with audit.ErrUnavailable and nothing of it
// stays.
func TestNoChangeWithoutItsEntry(t *testing.T) {
	ctx := context.Background()
	svc, st := newService(t)
	u, err := svc.AddUser(ctx, "it@pd.example", "it-admin", goodPassword, "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	_, k, err := svc.CreateAPIKey(ctx, "siem", "auditor", "local:root", "local")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	secret, _ := auth.NewTOTPSecret()
	for name, op := range map[string]func() error{
		"add user": func() error {
			_, err := svc.AddUser(ctx, "new@pd.example", "user", goodPassword, "local:root", "local")
			return err
		},
		"set password": func() error {
			return svc.SetPassword(ctx, u.ID, "another horse battery staple 43", "local:root", "local")
		},
		"enroll": func() error {
			_, err := svc.EnrollSecondFactor(ctx, u.ID, secret, auth.TOTPAlgorithm(), 1, "local:root", "local")
			return err
		},
		"create key": func() error {
			_, _, err := svc.CreateAPIKey(ctx, "siem2", "auditor", "local:root", "local")
			return err
		},
		"disable key": func() error { return svc.DisableAPIKey(ctx, k.ID, "local:root", "local") },
	} {
		if err := op(); !errors.Is(err, audit.ErrUnavailable) {
			t.Errorf("%s: %v, want audit.ErrUnavailable", name, err)
		}
	}
	if _, err := st.GetUserByEmail(ctx, "new@pd.example"); !errors.Is(err, store.ErrNotFound) {
		t.Error("a user was created without its entry")
	}
	if got, _ := st.GetUser(ctx, u.ID); !auth.CheckPassword(got.PasswordHash, goodPassword) || got.TOTPSecret != "" {
		t.Errorf("the password or second factor changed without its entry: %+v", got)
	}
	keys, _ := st.ListAPIKeys(ctx)
	if len(keys) != 1 || keys[0].Disabled {
		t.Errorf("API keys changed without their entries: %+v", keys)
	}
	if !strings.Contains(entries(t, st, accounts.ActionUserCreated)[0]["=target"], "it@pd.example") {
		t.Error("the trail lost the entries written before it failed")
	}
}
