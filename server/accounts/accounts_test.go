package accounts_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := audit.New(st, nil)
	svc := accounts.New(st, log)
	now := time.Now().UTC()
	for _, u := range []store.User{{ID: "a", Email: "a@x.gov", Role: "it-admin"}, {ID: "b", Email: "b@x.gov", Role: "it-admin"}, {ID: "l", Email: "l@x.gov", Role: "laso"}} {
		u.CreatedAt = now
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, &store.Session{ID: "s1", UserID: "b", Stage: "active", CreatedAt: now, LastSeen: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Disable(ctx, "b", "local:t", "local"); err != nil {
		t.Fatal(err)
	}
	if es, _ := st.ListAudit(ctx, store.AuditQuery{Action: accounts.ActionDisabled}); len(es) != 1 || !strings.Contains(es[0].Details, `"sessions_ended":"1"`) {
		t.Fatalf("disable entry: %+v", es)
	}
	if _, err := st.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a disabled user survived: %v", err)
	}
	if _, err := svc.Disable(ctx, "a", "local:t", "local"); !errors.Is(err, accounts.ErrLastAdmin) {
		t.Fatalf("disabling the last it-admin: %v", err)
	}
	if _, err := svc.SetRole(ctx, "a", "laso", "local:t", "local"); !errors.Is(err, accounts.ErrLastAdmin) {
		t.Fatalf("demoting the last it-admin: %v", err)
	}
	if u, _ := st.GetUser(ctx, "a"); u.Role != "it-admin" || u.DisabledAt != nil {
		t.Fatalf("a refused change changed the user: %+v", u)
	}
	if _, err := svc.SetRole(ctx, "l", "boss", "local:t", "local"); !errors.Is(err, accounts.ErrInvalid) {
		t.Fatalf("unknown role: %v", err)
	}
	if _, err := svc.Enable(ctx, "b", "local:t", "local"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetRole(ctx, "a", "laso", "local:t", "local"); err != nil {
		t.Fatalf("demoting one of two it-admins: %v", err)
	}
	// A user who is not an it-admin is disabled without the admin count.
	if _, err := svc.Disable(ctx, "l", "local:t", "local"); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{accounts.ActionDisabled: {"success", "denied", "success"}, accounts.ActionEnabled: {"success"},
		accounts.ActionRoleChanged: {"denied", "denied", "success"}}
	for action, outcomes := range want {
		es, err := st.ListAudit(ctx, store.AuditQuery{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Outcome)
		}
		if len(got) != len(outcomes) {
			t.Fatalf("%s: outcomes %v, want %v", action, got, outcomes)
		}
		for i := range got {
			if got[i] != outcomes[i] {
				t.Fatalf("%s: outcomes %v, want %v", action, got, outcomes)
			}
		}
	}
}
