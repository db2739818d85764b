package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// skewClock is a console clock the test moves forward.
type skewClock struct{ skew atomic.Int64 }

func (c *skewClock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *skewClock) advance(d time.Duration) { c.skew.Add(int64(d)) }
func (c *skewClock) option() server.Option   { return server.WithConsoleClock(c.now) }

// addConsoleUser creates a console user with a password that passes the
// policy and returns the password.
func addConsoleUser(t *testing.T, e *testenv.Env, email, role string) string {
	t.Helper()
	pw := "Quartz-Lantern-" + uuid.NewString()[:8]
	h, err := auth.HashPassword(pw)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := e.Server.Store.CreateUser(t.Context(), &store.User{ID: uuid.NewString(), Email: email, Role: role,
		PasswordHash: h, CreatedAt: now, PasswordSetAt: &now}); err != nil {
		t.Fatal(err)
	}
	return pw
}

// browserless is a console visitor without a browser: a cookie jar, no
// redirects followed, and the CSRF token of the last page it saw.
type browserless struct {
	t    *testing.T
	e    *testenv.Env
	c    *http.Client
	csrf string
	// secret is the TOTP secret this visitor enrolled; at is the time the
	// last code it sent was made for.
	secret string
	at     time.Time
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newBrowserless(t *testing.T, e *testenv.Env) *browserless {
	jar, _ := cookiejar.New(nil)
	c := e.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browserless{t: t, e: e, c: c}
}

func (b *browserless) do(req *http.Request) (int, string, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := csrfField.FindSubmatch(body); m != nil {
		b.csrf = string(m[1])
	}
	return resp.StatusCode, string(body), resp.Header.Get("Location")
}

func (b *browserless) get(path string) (status int, body, location string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.e.Server.ConsoleURL()+path, nil)
	return b.do(req)
}

// post sends form with this visitor's CSRF token unless form has one.
func (b *browserless) post(path string, form url.Values) (status int, body, location string) {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", b.csrf)
	}
	req, _ := http.NewRequest("POST", b.e.Server.ConsoleURL()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// password goes through the banner and submits the sign-in form.
func (b *browserless) password(email, pw string) (int, string, string) {
	b.t.Helper()
	if st, _, _ := b.get("/console/banner"); st != 200 {
		b.t.Fatalf("banner: %d", st)
	}
	if st, _, loc := b.post("/console/banner", nil); st != 303 || loc != "/console/login" {
		b.t.Fatalf("acknowledge: %d %q", st, loc)
	}
	b.get("/console/login")
	return b.post("/console/login", url.Values{"email": {email}, "password": {pw}})
}

var totpSecret = regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`)

// signIn signs in completely, enrolling TOTP the first time a role that
// needs it signs in; clock gives the time codes are made for.
func (b *browserless) signIn(email, pw string, clock func() time.Time) {
	b.t.Helper()
	st, body, loc := b.password(email, pw)
	if st != 303 {
		b.t.Fatalf("sign in %s: %d %s", email, st, body)
	}
	switch loc {
	case "/console/":
	case "/console/mfa/enroll":
		_, page, _ := b.get(loc)
		m := totpSecret.FindStringSubmatch(page)
		if m == nil {
			b.t.Fatalf("enrollment page shows no secret: %s", page)
		}
		b.secret = m[1]
		if st, body, _ := b.post(loc, url.Values{"code": {b.code(clock())}}); st != 200 || !strings.Contains(body, "recovery-codes") {
			b.t.Fatalf("confirm enrollment: %d %s", st, body)
		}
	case "/console/mfa":
		b.get(loc)
		if st, _, loc := b.post(loc, url.Values{"code": {b.code(clock())}}); st != 303 || loc != "/console/" {
			b.t.Fatalf("second factor: %d %q", st, loc)
		}
	default:
		b.t.Fatalf("sign in %s went to %q", email, loc)
	}
	if st, _, _ := b.get("/console/"); st != 200 {
		b.t.Fatalf("overview after sign-in: %d", st)
	}
}

func (b *browserless) code(at time.Time) string {
	b.t.Helper()
	b.at = at
	c, err := auth.TOTPCode(b.secret, auth.TOTPAlgorithm(), at)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// TestConsoleLockout: five wrong passwords lock the account; the right
// password is then refused until the lock ends — after 10 minutes under
// the v5.8 rule, only by an it-admin under v6 — and every attempt is an
// audit entry with its outcome and source address.
func TestConsoleLockout(t *testing.T) {
	wrongFive := func(t *testing.T, b *browserless, email string) {
		for i := 1; i <= 5; i++ {
			st, _, _ := b.password(email, "not-the-password-"+uuid.NewString()[:6])
			want := http.StatusUnauthorized
			if i == 5 {
				want = http.StatusForbidden // this one locked it
			}
			if st != want {
				t.Fatalf("wrong password %d: %d, want %d", i, st, want)
			}
		}
	}
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { lockoutRules(t, db, wrongFive) })
	}
}

func lockoutRules(t *testing.T, db testenv.Database, wrongFive func(*testing.T, *browserless, string)) {
	t.Run("v5.8: ten minutes", func(t *testing.T) {
		clock := &skewClock{}
		e := testenv.New(t, db.DSN(t), clock.option(), server.WithLoginLockout("v5.8"))
		pw := addConsoleUser(t, e, "auditor@agency.example", "auditor")
		b := newBrowserless(t, e)
		wrongFive(t, b, "auditor@agency.example")
		if st, body, _ := b.password("auditor@agency.example", pw); st != http.StatusForbidden || !strings.Contains(body, "locked") {
			t.Fatalf("right password while locked: %d", st)
		}
		clock.advance(9*time.Minute + 59*time.Second)
		if st, _, _ := b.password("auditor@agency.example", pw); st != http.StatusForbidden {
			t.Fatalf("right password at 9:59: %d, want 403", st)
		}
		clock.advance(time.Second)
		if st, _, loc := b.password("auditor@agency.example", pw); st != 303 || loc != "/console/" {
			t.Fatalf("right password at 10:00: %d %q", st, loc)
		}

		logins := e.Audit("console.login")
		var outcomes []string
		for _, a := range logins {
			if a.Source != "127.0.0.1" {
				t.Errorf("login entry without the source address: %+v", a)
			}
			outcomes = append(outcomes, a.Outcome)
		}
		want := "failure failure failure failure failure denied denied success"
		if got := strings.Join(outcomes, " "); got != want {
			t.Fatalf("login audit outcomes: %s, want %s", got, want)
		}
		if got := e.Audit("user.locked"); len(got) != 1 || got[0].Target != "user:auditor@agency.example" {
			t.Fatalf("user.locked entries: %+v", got)
		}
		if got := e.Audit("user.unlocked"); len(got) != 1 || got[0].Actor != "server" {
			t.Fatalf("user.unlocked entries: %+v", got)
		}
		// The auditor, now signed in, finds the same trail on the audit page.
		st, page, _ := b.get("/console/audit?action=console.login")
		if st != 200 || !strings.Contains(page, "Chain verified") || strings.Count(page, "<td>console.login</td>") != 8 {
			t.Fatalf("audit page filtered to console.login: %d, %d rows", st, strings.Count(page, "<td>console.login</td>"))
		}
	})
	t.Run("v6: until an it-admin unlocks", func(t *testing.T) {
		clock := &skewClock{}
		e := testenv.New(t, db.DSN(t), clock.option())
		pw := addConsoleUser(t, e, "laso@agency.example", "laso")
		adminPW := addConsoleUser(t, e, "it@agency.example", "it-admin")
		b := newBrowserless(t, e)
		wrongFive(t, b, "laso@agency.example")
		clock.advance(11 * time.Minute)
		if st, _, _ := b.password("laso@agency.example", pw); st != http.StatusForbidden {
			t.Fatalf("right password 11 minutes later under v6: %d, want 403", st)
		}
		admin := newBrowserless(t, e)
		admin.signIn("it@agency.example", adminPW, clock.now)
		_, page, _ := admin.get("/console/users")
		u, _ := e.Server.Store.GetUserByEmail(t.Context(), "laso@agency.example")
		if !strings.Contains(page, "/console/users/"+u.ID+"/unlock") {
			t.Fatal("users page offers no unlock for the locked user")
		}
		if st, _, _ := admin.post("/console/users/"+u.ID+"/unlock", nil); st != 303 {
			t.Fatalf("unlock: %d", st)
		}
		if st, _, loc := b.password("laso@agency.example", pw); st != 303 || loc != "/console/mfa/enroll" {
			t.Fatalf("right password after unlock: %d %q", st, loc)
		}
		un := e.Audit("user.unlocked")
		if len(un) != 1 || un[0].Actor != "user:it@agency.example" || un[0].Target != "user:laso@agency.example" {
			t.Fatalf("unlock audit: %+v", un)
		}
		// The unknown-user case is audited too, and says the same thing.
		st, body, _ := b.password("nobody@agency.example", pw)
		if st != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
			t.Fatalf("unknown user: %d", st)
		}
	})
}

// TestConsoleSessionRules: 30 idle minutes end the session; a POST
// without the session's CSRF token, or from another origin, is refused
// and changes nothing; a second factor code works once.
func TestConsoleSessionRules(t *testing.T) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { sessionRules(t, db) })
	}
}

func sessionRules(t *testing.T, db testenv.Database) {
	clock := &skewClock{}
	e := testenv.New(t, db.DSN(t), clock.option())
	pw := addConsoleUser(t, e, "it@agency.example", "it-admin")
	addConsoleUser(t, e, "locked@agency.example", "auditor")
	b := newBrowserless(t, e)
	b.signIn("it@agency.example", pw, clock.now)

	// The TOTP code that confirmed enrollment cannot sign in again.
	other := newBrowserless(t, e)
	other.secret = b.secret
	other.password("it@agency.example", pw)
	other.get("/console/mfa")
	if st, _, _ := other.post("/console/mfa", url.Values{"code": {b.code(b.at)}}); st != http.StatusUnauthorized {
		t.Fatalf("replayed TOTP code: %d, want 401", st)
	}
	if st, _, loc := other.post("/console/logout", nil); st != 303 || loc != "/console/banner?why=out" {
		t.Fatalf("sign out half-way: %d %q", st, loc)
	}

	// CSRF: a token-less unlock, a wrong token, another origin.
	u, _ := e.Server.Store.GetUserByEmail(t.Context(), "locked@agency.example")
	lock := func() {
		for range 5 {
			newBrowserless(t, e).password("locked@agency.example", "wrong-password-here")
		}
	}
	lock()
	b.get("/console/users")
	for name, form := range map[string]url.Values{"no token": {"csrf": {""}}, "wrong token": {"csrf": {other.csrf}}} {
		if st, _, _ := b.post("/console/users/"+u.ID+"/unlock", form); st != http.StatusForbidden {
			t.Fatalf("%s: %d, want 403", name, st)
		}
	}
	req, _ := http.NewRequest("POST", e.Server.ConsoleURL()+"/console/users/"+u.ID+"/unlock",
		strings.NewReader(url.Values{"csrf": {b.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if st, _, _ := b.do(req); st != http.StatusForbidden {
		t.Fatalf("cross-origin POST: %d, want 403", st)
	}
	if got, _ := e.Server.Store.GetUserByEmail(t.Context(), "locked@agency.example"); got.LockedAt == nil {
		t.Fatal("a refused POST unlocked the user")
	}
	denied := e.Audit("console.denied")
	if len(denied) != 3 || denied[0].Actor != "user:it@agency.example" || !strings.Contains(denied[0].Details["reason"], "CSRF") {
		t.Fatalf("CSRF refusals audited: %+v", denied)
	}

	// Idle: 29 minutes is fine and counts as activity; 30 more is not.
	clock.advance(29 * time.Minute)
	if st, _, _ := b.get("/console/devices"); st != 200 {
		t.Fatalf("after 29 idle minutes: %d", st)
	}
	clock.advance(30 * time.Minute)
	// The page or the server's sweep, whichever comes first, ends it.
	if st, _, loc := b.get("/console/devices"); st != 303 || !strings.HasPrefix(loc, "/console/banner?why=") {
		t.Fatalf("after 30 idle minutes: %d %q, want the banner", st, loc)
	}
	if st, _, loc := b.get("/console/devices"); st != 303 || !strings.HasPrefix(loc, "/console/banner") {
		t.Fatalf("the idle session came back: %d %q", st, loc)
	}
	if got := e.Audit("console.session_locked"); len(got) != 1 || got[0].Actor != "user:it@agency.example" ||
		!strings.HasPrefix(got[0].Details["reason"], "idle for 30m") {
		t.Fatalf("idle lock audit: %+v", got)
	}
	// Re-authenticating (password and a fresh code) lets the user back in.
	clock.advance(30 * time.Second)
	b.signIn("it@agency.example", pw, clock.now)
}

// TestConsoleParallelGuesses: twenty wrong passwords at once lock the
// account once, and the right password sent among them is refused like
// the rest once five have failed.
func TestConsoleParallelGuesses(t *testing.T) {
	e := testenv.New(t, "")
	addConsoleUser(t, e, "auditor@agency.example", "auditor")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			newBrowserless(t, e).password("auditor@agency.example", fmt.Sprintf("wrong-guess-%02d-xyz", i))
		}()
	}
	wg.Wait()
	if got := e.Audit("user.locked"); len(got) != 1 {
		t.Fatalf("user.locked %d times", len(got))
	}
	var failures, denied int
	for _, a := range e.Audit("console.login") {
		switch a.Outcome {
		case "failure":
			failures++
		case "denied":
			denied++
		}
	}
	if failures != 5 || denied != 15 {
		t.Fatalf("%d passwords checked and %d refused unchecked, want 5 and 15", failures, denied)
	}
}

// TestConsolePasswordChange: a user changes their own password in the
// console under the CJIS rules, with the current one asked for first.
func TestConsolePasswordChange(t *testing.T) {
	e := testenv.New(t, "")
	old := addConsoleUser(t, e, "auditor@agency.example", "auditor")
	b := newBrowserless(t, e)
	b.signIn("auditor@agency.example", old, time.Now)
	b.get("/console/password")
	next := "Copper-Violin-Meadow-73"
	for _, c := range []struct {
		name            string
		current, n, rep string
		status          int
		says            string
	}{
		{"wrong current", "nope-nope-nope-1", next, next, 401, "current password is wrong"},
		{"repeat differs", old, next, next + "x", 400, "differ"},
		{"common", old, "Password12345!", "Password12345!", 400, "common passwords"},
		{"contains the user id", old, "auditor-Meadow-73", "auditor-Meadow-73", 400, "user id"},
		{"the current one", old, old, old, 400, "last 10"},
		{"good", old, next, next, 303, ""},
	} {
		st, body, _ := b.post("/console/password", url.Values{"current": {c.current}, "new": {c.n}, "repeat": {c.rep}})
		if st != c.status || !strings.Contains(body, c.says) {
			t.Fatalf("%s: %d, want %d saying %q", c.name, st, c.status, c.says)
		}
	}
	if st, _, _ := newBrowserless(t, e).password("auditor@agency.example", old); st != http.StatusUnauthorized {
		t.Fatalf("old password after the change: %d", st)
	}
	if st, _, loc := newBrowserless(t, e).password("auditor@agency.example", next); st != 303 || loc != "/console/" {
		t.Fatalf("new password: %d %q", st, loc)
	}
	var outcomes []string
	for _, a := range e.Audit("user.password_changed") {
		outcomes = append(outcomes, a.Outcome)
	}
	if got := strings.Join(outcomes, " "); got != "failure failure failure success" {
		t.Fatalf("password change audit: %s", got)
	}
}

// TestConsoleSupervisorEndorses: a supervisor with the user role sees the
// Bluetooth requests that name them on their console page and endorses
// one there; nobody else's request is shown to them.
func TestConsoleSupervisorEndorses(t *testing.T) {
	e := testenv.New(t, "")
	pw := addConsoleUser(t, e, "sgt@agency.example", "user")
	cfg, err := e.MustEnroll().LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	key := e.APIKey("user")
	file := func(supervisor string) string {
		var q struct {
			ID string `json:"id"`
		}
		if st := e.Do("POST", "/api/v1/bluetooth/requests", key, map[string]any{"device_id": cfg.DeviceID,
			"address": "AA:BB:CC:00:11:22", "name": "Radio headset", "reason": "dispatch audio", "supervisor": supervisor}, &q); st != 201 {
			t.Fatalf("file request: %d", st)
		}
		return q.ID
	}
	mine, other := file("user:sgt@agency.example"), file("user:lt@agency.example")
	b := newBrowserless(t, e)
	b.signIn("sgt@agency.example", pw, time.Now)
	_, page, _ := b.get("/console/")
	if !strings.Contains(page, "/console/bluetooth/requests/"+mine+"/endorse") || strings.Contains(page, other) {
		t.Fatal("the supervisor's page does not list exactly their request")
	}
	if st, _, loc := b.post("/console/bluetooth/requests/"+mine+"/endorse", nil); st != 303 || loc != "/console/?done=endorsed" {
		t.Fatalf("endorse: %d %q", st, loc)
	}
	if st, _, _ := b.post("/console/bluetooth/requests/"+other+"/endorse", nil); st != http.StatusForbidden {
		t.Fatalf("endorsing someone else's request: %d, want 403", st)
	}
	testenv.Eventually(t, 5*time.Second, "endorsement audited", func() bool {
		got := e.Audit("bluetooth.request_endorsed")
		return len(got) == 2 && got[0].Actor == "user:sgt@agency.example" && got[0].Outcome == "success" && got[1].Outcome == "denied"
	})
}
