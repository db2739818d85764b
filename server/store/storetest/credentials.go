package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func user(t *testing.T, st *store.Store, id, email, role string) *store.User {
	t.Helper()
	u := &store.User{ID: id, Email: email, Role: role, PasswordHash: "hash-" + id, CreatedAt: now()}
	must(t, st.CreateUser(t.Context(), u))
	return u
}

func getUser(t *testing.T, st *store.Store, id string) *store.User {
	t.Helper()
	u, err := st.GetUser(t.Context(), id)
	must(t, err)
	return u
}

func emails(us []store.User) []string { return ids(us, func(u store.User) string { return u.Email }) }

func credentialContracts() []contract {
	return []contract{
		{"CreateAPIKey", []string{"CreateAPIKey", "GetAPIKey", "ListAPIKeys", "DisableAPIKey"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, id := range []string{"k2", "k1"} {
				must(t, st.CreateAPIKey(t.Context(), &store.APIKey{ID: id, Name: "n-" + id, Role: "auditor", Hash: []byte{1, byte(i)},
					CreatedAt: at.Add(time.Duration(i) * time.Minute), CreatedBy: "it"}))
			}
			k, err := st.GetAPIKey(t.Context(), "k1")
			if err != nil || k.Name != "n-k1" || k.Role != "auditor" || string(k.Hash) != "\x01\x01" || k.Disabled {
				t.Fatalf("key %+v %v", k, err)
			}
			ks, err := st.ListAPIKeys(t.Context())
			must(t, err)
			sameIDs(t, "oldest first", ids(ks, func(k store.APIKey) string { return k.ID }), "k2", "k1")
			must(t, st.DisableAPIKey(t.Context(), "k1"))
			if k, _ := st.GetAPIKey(t.Context(), "k1"); !k.Disabled {
				t.Fatal("a disabled key reads as enabled")
			}
			wantErr(t, "disabling an unknown key", st.DisableAPIKey(t.Context(), "nope"), store.ErrNotFound)
			_, err = st.GetAPIKey(t.Context(), "nope")
			wantErr(t, "unknown key", err, store.ErrNotFound)
		}},
		{"CreateUser", []string{"CreateUser", "GetUser", "GetUserByEmail", "ListUsers", "SetPassword"}, func(t *testing.T, open Opener) {
			st := open(t)
			user(t, st, "u2", "zed@pd", "laso")
			user(t, st, "u1", "amy@pd", "it-admin")
			wantErr(t, "a second user with the email", st.CreateUser(t.Context(), &store.User{ID: "u3", Email: "amy@pd"}), store.ErrConflict)
			u, err := st.GetUserByEmail(t.Context(), "amy@pd")
			if err != nil || u.ID != "u1" || u.Role != "it-admin" || u.PasswordHash != "hash-u1" {
				t.Fatalf("by email: %+v %v", u, err)
			}
			us, err := st.ListUsers(t.Context())
			must(t, err)
			sameIDs(t, "by email", emails(us), "amy@pd", "zed@pd")
			at := now()
			must(t, st.SetPassword(t.Context(), "u1", "new-hash", `["hash-u1"]`, at))
			u = getUser(t, st, "u1")
			if u.PasswordHash != "new-hash" || u.PasswordHistory != `["hash-u1"]` {
				t.Fatalf("after SetPassword %+v", u)
			}
			samePtrTime(t, "password set", u.PasswordSetAt, at)
			_, err = st.GetUser(t.Context(), "nope")
			wantErr(t, "unknown id", err, store.ErrNotFound)
			_, err = st.GetUserByEmail(t.Context(), "nope@pd")
			wantErr(t, "unknown email", err, store.ErrNotFound)
		}},
		{"LoginFailed", []string{"LoginFailed", "ClearLoginFailures"}, func(t *testing.T, open Opener) {
			st := open(t)
			user(t, st, "u", "u@pd", "laso")
			at := now()
			for i := 1; i <= 4; i++ {
				u, locked, err := st.LoginFailed(t.Context(), "u", at.Add(time.Duration(i)*time.Second), nil, 3)
				must(t, err)
				if u.FailedLogins != i || locked != (i == 3) || (u.LockedAt != nil) != (i >= 3) {
					t.Fatalf("failure %d: count %d, locked now %v, locked at %v", i, u.FailedLogins, locked, u.LockedAt)
				}
				samePtrTime(t, "first failure", u.FirstFailedAt, at.Add(time.Second))
			}
			samePtrTime(t, "locked at", getUser(t, st, "u").LockedAt, at.Add(3*time.Second))
			if was, err := st.ClearLoginFailures(t.Context(), "u"); err != nil || !was {
				t.Fatalf("clear: was locked %v, %v", was, err)
			}
			u := getUser(t, st, "u")
			if u.FailedLogins != 0 || u.FirstFailedAt != nil || u.LockedAt != nil {
				t.Fatalf("cleared user %+v", u)
			}
			if was, err := st.ClearLoginFailures(t.Context(), "u"); err != nil || was {
				t.Fatalf("clear again: was locked %v, %v", was, err)
			}
			// Failures before the window no longer count.
			st.LoginFailed(t.Context(), "u", at, nil, 3)
			st.LoginFailed(t.Context(), "u", at, nil, 3)
			window := at.Add(time.Minute)
			u, locked, err := st.LoginFailed(t.Context(), "u", at.Add(2*time.Minute), &window, 3)
			if err != nil || locked || u.FailedLogins != 1 {
				t.Fatalf("after the window: count %d, locked %v, %v", u.FailedLogins, locked, err)
			}
			samePtrTime(t, "window restarts", u.FirstFailedAt, at.Add(2*time.Minute))
			_, _, err = st.LoginFailed(t.Context(), "nope", at, nil, 3)
			wantErr(t, "unknown user", err, store.ErrNotFound)
			_, err = st.ClearLoginFailures(t.Context(), "nope")
			wantErr(t, "unknown user", err, store.ErrNotFound)
		}},
		{"LoginFailed/parallel", []string{"LoginFailed"}, func(t *testing.T, open Opener) {
			// Parallel guesses are all counted and lock the account once.
			st := open(t)
			user(t, st, "u", "u@pd", "laso")
			var wg sync.WaitGroup
			var mu sync.Mutex
			lockedBy, errs := 0, []error{}
			for range 10 {
				wg.Go(func() {
					_, locked, err := st.LoginFailed(t.Context(), "u", now(), nil, 5)
					mu.Lock()
					defer mu.Unlock()
					if locked {
						lockedBy++
					}
					errs = append(errs, err)
				})
			}
			wg.Wait()
			must(t, errors.Join(errs...))
			if u := getUser(t, st, "u"); u.FailedLogins != 10 || lockedBy != 1 || u.LockedAt == nil {
				t.Fatalf("10 parallel failures: count %d, locked by %d", u.FailedLogins, lockedBy)
			}
		}},
		{"SetTOTP", []string{"SetTOTP", "UseTOTPStep", "ReplaceRecoveryCodes"}, func(t *testing.T, open Opener) {
			st := open(t)
			user(t, st, "u", "u@pd", "laso")
			must(t, st.SetTOTP(t.Context(), "u", "SECRET", "SHA256", 100, `["r1","r2"]`))
			u := getUser(t, st, "u")
			if u.TOTPSecret != "SECRET" || u.TOTPAlgorithm != "SHA256" || u.TOTPLastStep != 100 || u.RecoveryCodes != `["r1","r2"]` {
				t.Fatalf("after SetTOTP %+v", u)
			}
			for _, c := range []struct {
				step int64
				ok   bool
			}{{100, false}, {99, false}, {101, true}, {101, false}, {105, true}, {103, false}} {
				if ok, err := st.UseTOTPStep(t.Context(), "u", c.step); err != nil || ok != c.ok {
					t.Fatalf("step %d: %v %v, want %v", c.step, ok, err, c.ok)
				}
			}
			if ok, err := st.ReplaceRecoveryCodes(t.Context(), "u", `["r1","r2"]`, `["r2"]`); err != nil || !ok {
				t.Fatalf("first use of r1: %v %v", ok, err)
			}
			// The same code used twice at once: the second finds them changed.
			if ok, err := st.ReplaceRecoveryCodes(t.Context(), "u", `["r1","r2"]`, `["r2"]`); err != nil || ok {
				t.Fatalf("second use of r1: %v %v", ok, err)
			}
			if u := getUser(t, st, "u"); u.RecoveryCodes != `["r2"]` {
				t.Fatalf("codes %s", u.RecoveryCodes)
			}
		}},
		{"ChangeUser", []string{"ChangeUser"}, func(t *testing.T, open Opener) {
			st := open(t)
			user(t, st, "a", "a@pd", "it-admin")
			user(t, st, "b", "b@pd", "it-admin")
			user(t, st, "l", "l@pd", "laso")
			for _, id := range []string{"s1", "s2"} {
				must(t, st.CreateSession(t.Context(), &store.Session{ID: id, UserID: "a", Stage: "active", CreatedAt: now(), LastSeen: now()}))
			}
			at := now()
			disable := func(u *store.User) (store.UserChange, error) {
				if u.Email == "" {
					return store.UserChange{}, errors.New("change saw an empty row")
				}
				return store.UserChange{Set: map[string]any{"disabled_at": at}, EndSessions: true}, nil
			}
			refused := errors.New("last it-admin")
			var seen map[string]int64
			check := func(by map[string]int64) error {
				if seen = by; by["it-admin"] == 0 {
					return refused
				}
				return nil
			}
			u, err := st.ChangeUser(t.Context(), "b", disable, check)
			must(t, err)
			samePtrTime(t, "disabled", u.DisabledAt, at)
			if seen["it-admin"] != 1 || seen["laso"] != 1 {
				t.Fatalf("check saw %v, want the counts after the change", seen)
			}
			// The last it-admin: refused, and nothing of it stays.
			_, err = st.ChangeUser(t.Context(), "a", disable, check)
			wantErr(t, "refused change", err, refused)
			if getUser(t, st, "a").DisabledAt != nil {
				t.Fatal("a refused change was kept")
			}
			if _, err := st.GetSession(t.Context(), "s1"); err != nil {
				t.Fatalf("a refused change ended the sessions: %v", err)
			}
			var ended int64
			u, err = st.ChangeUser(t.Context(), "a", func(*store.User) (store.UserChange, error) {
				return store.UserChange{Set: map[string]any{"role": "laso"}, EndSessions: true, Ended: &ended}, nil
			}, nil)
			if err != nil || u.Role != "laso" || ended != 2 {
				t.Fatalf("role change: %+v ended %d, %v", u, ended, err)
			}
			_, err = st.GetSession(t.Context(), "s2")
			wantErr(t, "ended session", err, store.ErrNotFound)
			u, err = st.ChangeUser(t.Context(), "l", func(*store.User) (store.UserChange, error) { return store.UserChange{}, nil },
				func(map[string]int64) error { return refused })
			if err != nil || u.Role != "laso" {
				t.Fatalf("no change is not checked: %+v %v", u, err)
			}
			_, err = st.ChangeUser(t.Context(), "nope", disable, nil)
			wantErr(t, "unknown user", err, store.ErrNotFound)
		}},
	}
}
