package integration

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestAccountLifecycle is acceptance point 9 (agency policy W.3), on
// every database: an it-admin disables a user from the console and the
// user's open session is refused on its next request, their sign-in is
// refused (as a wrong password is); re-enabled they sign in again. The
// last enabled it-admin can be disabled or demoted neither from the
// console, nor the API, nor the host command. Every step is audited,
// with who and from where.
func TestAccountLifecycle(t *testing.T) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { accountLifecycle(t, db) })
	}
}

func accountLifecycle(t *testing.T, db testenv.Database) {
	dsn := db.DSN(t)
	e := testenv.New(t, dsn)
	itPW := addConsoleUser(t, e, "it@agency.example", "it-admin")
	userPW := addConsoleUser(t, e, "officer@agency.example", "user")
	it := newBrowserless(t, e)
	it.signIn("it@agency.example", itPW, time.Now)
	officer := newBrowserless(t, e)
	officer.signIn("officer@agency.example", userPW, time.Now)
	off, _ := e.Server.Store.GetUserByEmail(t.Context(), "officer@agency.example")
	me, _ := e.Server.Store.GetUserByEmail(t.Context(), "it@agency.example")

	// The Users page offers the buttons; Disable ends the officer's session.
	if st, body, _ := it.get("/console/users"); st != 200 || !strings.Contains(body, "/console/users/"+off.ID+"/disable") ||
		!strings.Contains(body, "/console/users/"+off.ID+"/role") {
		t.Fatalf("users page: %d, no disable or role form:\n%s", st, body)
	}
	if st, _, loc := it.post("/console/users/"+off.ID+"/disable", nil); st != 303 || loc != "/console/users?done=user-off" {
		t.Fatalf("disable: %d %q", st, loc)
	}
	if st, _, loc := officer.get("/console/"); st != 303 || !strings.HasPrefix(loc, "/console/banner") {
		t.Fatalf("a disabled user's open session answered: %d %q", st, loc)
	}
	if _, body, _ := it.get("/console/users"); !strings.Contains(body, "disabled since") || !strings.Contains(body, "/console/users/"+off.ID+"/enable") {
		t.Fatalf("users page does not show the user disabled:\n%s", body)
	}
	// Refused with the right password exactly as with a wrong one.
	stRight, bodyRight, _ := newBrowserless(t, e).password("officer@agency.example", userPW)
	stWrong, bodyWrong, _ := newBrowserless(t, e).password("nobody@agency.example", userPW)
	if stRight != http.StatusUnauthorized || stRight != stWrong || !strings.Contains(bodyRight, "Wrong email or password.") ||
		!strings.Contains(bodyWrong, "Wrong email or password.") {
		t.Fatalf("disabled sign-in: %d, unknown user: %d\n%s", stRight, stWrong, bodyRight)
	}
	if st, _, loc := it.post("/console/users/"+off.ID+"/enable", nil); st != 303 || loc != "/console/users?done=user-on" {
		t.Fatalf("enable: %d %q", st, loc)
	}
	again := newBrowserless(t, e)
	again.signIn("officer@agency.example", userPW, time.Now)

	// The last it-admin: console, API, host command.
	if st, body, _ := it.post("/console/users/"+me.ID+"/disable", nil); st != http.StatusConflict || !strings.Contains(body, "last enabled it-admin") {
		t.Fatalf("console disables the last it-admin: %d\n%s", st, body)
	}
	it.get("/console/users")
	if st, body, _ := it.post("/console/users/"+me.ID+"/role", map[string][]string{"role": {"laso"}}); st != http.StatusConflict ||
		!strings.Contains(body, "last enabled it-admin") {
		t.Fatalf("console demotes the last it-admin: %d\n%s", st, body)
	}
	key := e.APIKey("it-admin")
	var refusal struct{ Error string }
	if st := e.Do("POST", "/api/v1/users/"+me.ID+"/disable", key, nil, &refusal); st != http.StatusConflict || !strings.Contains(refusal.Error, "last enabled it-admin") {
		t.Fatalf("API disables the last it-admin: %d %q", st, refusal.Error)
	}
	if st := e.Do("PUT", "/api/v1/users/"+me.ID+"/role", key, map[string]any{"role": "auditor"}, &refusal); st != http.StatusConflict {
		t.Fatalf("API demotes the last it-admin: %d", st)
	}
	if st := e.Do("PUT", "/api/v1/users/"+me.ID+"/role", key, map[string]any{}, nil); st != http.StatusBadRequest {
		t.Fatalf("PUT role without a role: %d, want 400", st)
	}
	bin := buildServer(t, "")
	host := func(args ...string) (string, error) {
		args = append(args, "--data", e.DataDir)
		if dsn != "" {
			args = append(args, "--database", dsn)
		}
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := host("user", "disable", "--email", "it@agency.example"); err == nil || !strings.Contains(out, "last enabled it-admin") {
		t.Fatalf("host disables the last it-admin: %v\n%s", err, out)
	}
	if out, err := host("user", "role", "--email", "it@agency.example", "--role", "user"); err == nil || !strings.Contains(out, "last enabled it-admin") {
		t.Fatalf("host demotes the last it-admin: %v\n%s", err, out)
	}
	if st, _, _ := it.get("/console/users"); st != 200 {
		t.Fatalf("the it-admin lost their session to a refused change: %d", st)
	}

	// With a second it-admin, the API and the host do the rest.
	if out, err := host("user", "role", "--email", "officer@agency.example", "--role", "it-admin"); err != nil {
		t.Fatalf("host role: %v\n%s", err, out)
	}
	if st, _, loc := again.get("/console/"); st != 303 || !strings.HasPrefix(loc, "/console/banner") {
		t.Fatalf("a re-roled user's session survived: %d %q", st, loc)
	}
	var u struct {
		Role     string
		Disabled bool
	}
	if st := e.Do("PUT", "/api/v1/users/"+me.ID+"/role", key, map[string]any{"role": "laso"}, &u); st != 200 || u.Role != "laso" {
		t.Fatalf("API demotes one of two it-admins: %d %+v", st, u)
	}
	if st, _, loc := it.get("/console/"); st != 303 || !strings.HasPrefix(loc, "/console/banner") {
		t.Fatalf("a demoted it-admin's session survived: %d %q", st, loc)
	}
	if st := e.Do("POST", "/api/v1/users/"+off.ID+"/disable", key, nil, &refusal); st != http.StatusConflict {
		t.Fatalf("API disables the (new) last it-admin: %d", st)
	}
	if out, err := host("user", "disable", "--email", "it@agency.example"); err != nil || !strings.Contains(out, "disabled") {
		t.Fatalf("host disable: %v\n%s", err, out)
	}
	if st := e.Do("POST", "/api/v1/users/"+me.ID+"/enable", key, nil, &u); st != 200 || u.Disabled {
		t.Fatalf("API enable: %d %+v", st, u)
	}
	var list struct{ Users []map[string]any }
	if st := e.Do("GET", "/api/v1/users", key, nil, &list); st != 200 || len(list.Users) != 2 {
		t.Fatalf("GET /api/v1/users: %d %+v", st, list)
	}

	// Every step, with who and from where.
	type step struct{ actor, source, outcome string }
	want := map[string][]step{
		"user.disabled": {
			{"user:it@agency.example", "127.0.0.1", "success"},
			{"user:it@agency.example", "127.0.0.1", "denied"},
			{"apikey:", "127.0.0.1", "denied"},
			{"local:", "local", "denied"},
			{"apikey:", "127.0.0.1", "denied"},
			{"local:", "local", "success"},
		},
		"user.enabled": {{"user:it@agency.example", "127.0.0.1", "success"}, {"apikey:", "127.0.0.1", "success"}},
		"user.role_changed": {
			{"user:it@agency.example", "127.0.0.1", "denied"},
			{"apikey:", "127.0.0.1", "denied"},
			{"local:", "local", "denied"},
			{"local:", "local", "success"},
			{"apikey:", "127.0.0.1", "success"},
		},
	}
	for action, steps := range want {
		got := e.Audit(action)
		if len(got) != len(steps) {
			t.Fatalf("%s: %d entries, want %d: %+v", action, len(got), len(steps), got)
		}
		for i, s := range steps {
			g := got[i]
			if !strings.HasPrefix(g.Actor, s.actor) || g.Source != s.source || g.Outcome != s.outcome || !strings.HasPrefix(g.Target, "user:") {
				t.Errorf("%s #%d: %+v, want %+v", action, i, g, s)
			}
			if s.outcome == "denied" && !strings.Contains(g.Details["reason"], "last enabled it-admin") {
				t.Errorf("%s #%d refusal without its reason: %+v", action, i, g)
			}
		}
	}
	if d := e.Audit("user.disabled"); d[0].Details["sessions_ended"] != "1" || d[0].Target != "user:officer@agency.example" {
		t.Errorf("the console's disable does not say it ended the open session: %+v", d[0])
	}
	if rc := e.Audit("user.role_changed"); rc[3].Details["from"] != "user" || rc[3].Details["to"] != "it-admin" {
		t.Errorf("role change without from and to: %+v", rc[3])
	}
	var disabledSignIn bool
	for _, a := range e.Audit("console.login") {
		disabledSignIn = disabledSignIn || a.Target == "user:officer@agency.example" && a.Outcome == "denied" && a.Details["reason"] == "account disabled"
	}
	if !disabledSignIn {
		t.Error("the disabled user's sign-in is not in the trail")
	}
}

// TestLastAdminRace: two it-admins disabling each other at the same
// moment leave one of them enabled, every time, on every database.
func TestLastAdminRace(t *testing.T) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) {
			e := testenv.New(t, db.DSN(t))
			addConsoleUser(t, e, "a@agency.example", "it-admin")
			addConsoleUser(t, e, "b@agency.example", "it-admin")
			a, _ := e.Server.Store.GetUserByEmail(t.Context(), "a@agency.example")
			b, _ := e.Server.Store.GetUserByEmail(t.Context(), "b@agency.example")
			key := e.APIKey("it-admin")
			for round := range 10 {
				codes := make(chan int, 2)
				for _, id := range []string{a.ID, b.ID} {
					go func() { codes <- e.Do("POST", "/api/v1/users/"+id+"/disable", key, nil, nil) }()
				}
				c1, c2 := <-codes, <-codes
				if c1+c2 != 200+409 {
					t.Fatalf("round %d: %d and %d, want one 200 and one 409", round, c1, c2)
				}
				for _, id := range []string{a.ID, b.ID} {
					if st := e.Do("POST", "/api/v1/users/"+id+"/enable", key, nil, nil); st != 200 {
						t.Fatalf("enable: %d", st)
					}
				}
			}
		})
	}
}
