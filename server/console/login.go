package console

import (
	"context"
	"errors"
	"image/png"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/status"
	"github.com/cordon-mdm/cordon/server/store"
)

// preToken returns the pre-sign-in CSRF token, setting the cookie when
// the browser has none yet.
func preToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(preCookie); err == nil && len(ck.Value) >= 32 && len(ck.Value) <= 64 {
		return ck.Value
	}
	t := newToken()
	setCookie(w, preCookie, t, 0)
	return t
}

var whyText = map[string]string{
	"idle":   "Your session was locked after 30 minutes without activity. Sign in again.",
	"out":    "You are signed out.",
	"locked": "Too many failed sign-ins: this account is locked. An IT administrator can unlock it.",
	"ended":  "Your session has ended. Sign in again.",
}

func (c *Console) bannerPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "banner", nil, view{Title: "System use notification", CSRF: preToken(w, r),
		Flash: whyText[r.URL.Query().Get("why")], D: c.banner})
}

func (c *Console) acknowledge(w http.ResponseWriter, r *http.Request) {
	setCookie(w, ackCookie, "1", 0)
	c.record(r.Context(), "anonymous", httpjson.RemoteHost(r), ActionBannerAck, "console", audit.Success, nil)
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

func acknowledged(r *http.Request) bool {
	ck, err := r.Cookie(ackCookie)
	return err == nil && ck.Value == "1"
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !acknowledged(r) {
		c.toBanner(w, r, "")
		return
	}
	c.render(w, r, http.StatusOK, "login", nil, view{Title: "Sign in", CSRF: preToken(w, r)})
}

// dummyHash is checked against when the email is unknown, so a wrong
// email takes as long as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("cordon-no-such-user-password")
	return h
})

const wrongLogin = "Wrong email or password."

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if !acknowledged(r) {
		c.toBanner(w, r, "")
		return
	}
	ctx := r.Context()
	src := httpjson.RemoteHost(r)
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	again := func(status int, msg string) {
		c.render(w, r, status, "login", nil, view{Title: "Sign in", CSRF: preToken(w, r), Error: msg})
	}
	if email == "" || len(email) > 256 || password == "" || len(password) > 256 {
		again(http.StatusBadRequest, "Enter your email and password.")
		return
	}
	// Held before the user is read, so what is read is current for the
	// whole attempt.
	defer c.signIns.Lock(email)()
	u, err := c.signIn.GetUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) {
		auth.CheckPassword(dummyHash(), password)
		c.record(ctx, "anonymous", src, ActionLogin, "user:"+email, audit.Failure,
			map[string]string{"step": "password", "reason": "unknown user"})
		again(http.StatusUnauthorized, wrongLogin)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if u.DisabledAt != nil {
		// As for an unknown user: the password is checked against nothing
		// and the answer is the wrong-password one, so a disabled account
		// tells nobody whether the password was right.
		auth.CheckPassword(dummyHash(), password)
		c.record(ctx, "user:"+u.Email, src, ActionLogin, "user:"+u.Email, audit.Denied,
			map[string]string{"step": "password", "reason": "account disabled"})
		again(http.StatusUnauthorized, wrongLogin)
		return
	}
	if c.stillLocked(ctx, u, src) {
		// The password is not even checked: a locked account answers
		// nothing about it.
		c.record(ctx, "user:"+u.Email, src, ActionLogin, "user:"+u.Email, audit.Denied,
			map[string]string{"step": "password", "reason": "account locked"})
		again(http.StatusForbidden, whyText["locked"])
		return
	}
	if !auth.CheckPassword(u.PasswordHash, password) {
		if c.failed(ctx, u, src, "password", "wrong password") {
			again(http.StatusForbidden, whyText["locked"])
			return
		}
		again(http.StatusUnauthorized, wrongLogin)
		return
	}
	stage := stageActive
	switch {
	case u.TOTPSecret != "":
		stage = stageMFA
	case auth.MFARequired(u.Role):
		stage = stageEnroll
	}
	token := newToken()
	now := c.now()
	s := &store.Session{ID: sessionID(token), UserID: u.ID, Stage: stage, CSRF: newToken(), Source: src, CreatedAt: now, LastSeen: now}
	if err := c.sessions.CreateSession(ctx, s); err != nil {
		c.fail(w, r, err)
		return
	}
	setCookie(w, sessionCookie, token, 0)
	clearCookie(w, ackCookie)
	if stage == stageActive {
		c.signedIn(ctx, u, src, "password")
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.record(ctx, "user:"+u.Email, src, ActionLogin, "user:"+u.Email, audit.Success,
		map[string]string{"step": "password", "next": stage})
	if stage == stageMFA {
		http.Redirect(w, r, "/console/mfa", http.StatusSeeOther)
	} else {
		http.Redirect(w, r, "/console/mfa/enroll", http.StatusSeeOther)
	}
}

// stillLocked reports whether u is locked now; an expired v5.8 lock is
// lifted here, with its own audit entry.
func (c *Console) stillLocked(ctx context.Context, u *store.User, src string) bool {
	locked, expired := c.lockout.Locked(u, c.now())
	if expired {
		if _, err := c.signIn.ClearLoginFailures(ctx, u.ID); err == nil {
			c.record(ctx, "server", src, accounts.ActionUserUnlocked, "user:"+u.Email, audit.Success,
				map[string]string{"reason": "lock expired (" + c.lockout.Rule + " rule, " + c.lockout.Duration.String() + ")"})
		}
	}
	return locked
}

// failed counts a failed sign-in step and audits it; it reports whether
// this failure locked the account.
func (c *Console) failed(ctx context.Context, u *store.User, src, step, reason string) bool {
	now := c.now()
	after, lockedNow, err := c.signIn.LoginFailed(ctx, u.ID, now, c.lockout.WindowStart(now), c.lockout.Threshold)
	n := 0
	if err == nil {
		n = after.FailedLogins
	}
	c.record(ctx, "user:"+u.Email, src, ActionLogin, "user:"+u.Email, audit.Failure,
		map[string]string{"step": step, "reason": reason, "consecutive_failures": strconv.Itoa(n)})
	if lockedNow {
		c.record(ctx, "server", src, ActionUserLocked, "user:"+u.Email, audit.Success,
			map[string]string{"consecutive_failures": strconv.Itoa(n), "rule": c.lockout.Rule})
	}
	return lockedNow
}

// holdSignIn serialises a second-factor step of v's user with the user's
// other sign-in steps (keyed by email, as the password step is, before it
// knows the user) and re-reads the user under that hold. A locked
// account ends the session (false: the caller answers nothing more).
func (c *Console) holdSignIn(w http.ResponseWriter, r *http.Request, v *visit, step string) (func(), bool) {
	ctx := r.Context()
	unlock := c.signIns.Lock(v.user.Email)
	u, err := c.signIn.GetUser(ctx, v.user.ID)
	if err != nil {
		unlock()
		c.fail(w, r, err)
		return nil, false
	}
	v.user = u
	if u.DisabledAt != nil {
		unlock()
		c.sessions.DeleteSession(ctx, v.session.ID)
		clearCookie(w, sessionCookie)
		c.record(ctx, v.actor(), v.source, ActionLogin, v.actor(), audit.Denied,
			map[string]string{"step": step, "reason": "account disabled"})
		c.toBanner(w, r, "ended")
		return nil, false
	}
	if c.stillLocked(ctx, u, v.source) {
		unlock()
		c.sessions.DeleteSession(ctx, v.session.ID)
		clearCookie(w, sessionCookie)
		c.record(ctx, v.actor(), v.source, ActionLogin, v.actor(), audit.Denied,
			map[string]string{"step": step, "reason": "account locked"})
		c.toBanner(w, r, "locked")
		return nil, false
	}
	return unlock, true
}

// failedInSession counts a failed second factor inside a session; when
// it locks the account the session ends and the browser goes to the
// banner (true: the caller answers nothing more).
func (c *Console) failedInSession(w http.ResponseWriter, r *http.Request, v *visit, step, reason string) bool {
	if !c.failed(r.Context(), v.user, v.source, step, reason) {
		return false
	}
	c.sessions.DeleteSession(r.Context(), v.session.ID)
	clearCookie(w, sessionCookie)
	c.toBanner(w, r, "locked")
	return true
}

func (c *Console) signedIn(ctx context.Context, u *store.User, src, method string) {
	c.signIn.ClearLoginFailures(ctx, u.ID)
	c.record(ctx, "user:"+u.Email, src, ActionLogin, "user:"+u.Email, audit.Success,
		map[string]string{"step": "complete", "method": method, "role": u.Role})
}

// secondFactor checks a TOTP code (each time step once) or a one-time
// recovery code, and says which it was.
func (c *Console) secondFactor(ctx context.Context, u *store.User, code string) (string, bool) {
	code = strings.TrimSpace(code)
	if u.TOTPSecret == "" || code == "" || len(code) > 64 {
		return "", false
	}
	if step, ok := auth.CheckTOTP(u.TOTPSecret, u.TOTPAlgorithm, code, c.now()); ok {
		fresh, err := c.signIn.UseTOTPStep(ctx, u.ID, step)
		return "totp", err == nil && fresh
	}
	if left, ok := auth.UseRecoveryCode(u.RecoveryCodes, code); ok {
		swapped, err := c.signIn.ReplaceRecoveryCodes(ctx, u.ID, u.RecoveryCodes, left)
		return "recovery_code", err == nil && swapped
	}
	return "", false
}

func (c *Console) mfaPage(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.session.Stage != stageMFA {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "mfa", v, view{Title: "Second factor"})
}

func (c *Console) mfa(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	if v.session.Stage != stageMFA {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	unlock, ok := c.holdSignIn(w, r, v, "totp")
	if !ok {
		return
	}
	defer unlock()
	method, ok := c.secondFactor(ctx, v.user, r.PostFormValue("code"))
	if !ok {
		if c.failedInSession(w, r, v, "totp", "wrong or reused code") {
			return
		}
		c.render(w, r, http.StatusUnauthorized, "mfa", v, view{Title: "Second factor", Error: "Wrong or already used code."})
		return
	}
	if err := c.activate(ctx, v); err != nil {
		c.fail(w, r, err)
		return
	}
	c.signedIn(ctx, v.user, v.source, method)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
}

// activate finishes sign-in. The session gets a new CSRF token, so one
// seen before the second factor is worth nothing after it.
func (c *Console) activate(ctx context.Context, v *visit) error {
	v.session.Stage = stageActive
	v.session.CSRF = newToken()
	v.session.PendingTOTP = ""
	return c.sessions.SaveSession(ctx, v.session)
}

type enrollView struct {
	Secret, URI string
	Codes       []string
}

// pendingSecret returns the secret being enrolled in this session,
// making one on first sight.
func (c *Console) pendingSecret(ctx context.Context, v *visit) (string, error) {
	if v.session.PendingTOTP != "" {
		return v.session.PendingTOTP, nil
	}
	s, err := auth.NewTOTPSecret()
	if err != nil {
		return "", err
	}
	v.session.PendingTOTP = s
	return s, c.sessions.SaveSession(ctx, v.session)
}

func (c *Console) enrollPage(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.session.Stage != stageEnroll {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	if _, err := c.pendingSecret(r.Context(), v); err != nil {
		c.fail(w, r, err)
		return
	}
	c.enrollForm(w, r, v, http.StatusOK, "")
}

// pendingURI is the otpauth URI of the secret being enrolled.
func pendingURI(v *visit) string {
	return auth.TOTPURI("Cordon", v.user.Email, v.session.PendingTOTP, auth.TOTPAlgorithm())
}

func (c *Console) enrollForm(w http.ResponseWriter, r *http.Request, v *visit, status int, msg string) {
	c.render(w, r, status, "enroll", v, view{Title: "Set up your second factor", Error: msg,
		D: enrollView{Secret: v.session.PendingTOTP, URI: pendingURI(v)}})
}

func (c *Console) enrollQR(w http.ResponseWriter, r *http.Request, v *visit) {
	if v.session.Stage != stageEnroll || v.session.PendingTOTP == "" {
		http.NotFound(w, r)
		return
	}
	key, err := auth.TOTPKey(pendingURI(v))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	img, err := key.Image(240, 240)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	png.Encode(w, img)
}

func (c *Console) enrollConfirm(w http.ResponseWriter, r *http.Request, v *visit) {
	ctx := r.Context()
	if v.session.Stage != stageEnroll || v.session.PendingTOTP == "" {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	unlock, ok := c.holdSignIn(w, r, v, "mfa_enrollment")
	if !ok {
		return
	}
	defer unlock()
	secret, alg := v.session.PendingTOTP, auth.TOTPAlgorithm()
	step, ok := auth.CheckTOTP(secret, alg, r.PostFormValue("code"), c.now())
	if !ok {
		if c.failedInSession(w, r, v, "mfa_enrollment", "wrong code") {
			return
		}
		c.enrollForm(w, r, v, http.StatusUnauthorized, "That code does not match. Check the time on your phone and try the next code.")
		return
	}
	codes, err := c.credentials.EnrollSecondFactor(ctx, v.user.ID, secret, alg, step, v.actor(), v.source)
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	if err := c.activate(ctx, v); err != nil {
		c.fail(w, r, err)
		return
	}
	c.signedIn(ctx, v.user, v.source, "totp")
	// The codes are shown this once and never again.
	c.render(w, r, http.StatusOK, "recovery", v, view{Title: "Your recovery codes", D: enrollView{Codes: codes}})
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, v *visit) {
	c.sessions.DeleteSession(r.Context(), v.session.ID)
	clearCookie(w, sessionCookie)
	clearCookie(w, ackCookie)
	c.record(r.Context(), v.actor(), v.source, ActionLogout, v.actor(), audit.Success, nil)
	c.toBanner(w, r, "out")
}

func (c *Console) passwordPage(w http.ResponseWriter, r *http.Request, v *visit) {
	c.render(w, r, http.StatusOK, "password", v, view{Title: "Change your password"})
}

// changePassword asks for the current password (a session left open is
// not enough to take over the account) and applies the CJIS rules to the
// new one. A wrong current password counts towards the lockout.
func (c *Console) changePassword(w http.ResponseWriter, r *http.Request, v *visit) {
	again := func(status int, msg string) {
		c.render(w, r, status, "password", v, view{Title: "Change your password", Error: msg})
	}
	unlock, ok := c.holdSignIn(w, r, v, "password_change")
	if !ok {
		return
	}
	defer unlock()
	if !auth.CheckPassword(v.user.PasswordHash, r.PostFormValue("current")) {
		if c.failedInSession(w, r, v, "password_change", "wrong current password") {
			return
		}
		again(http.StatusUnauthorized, "The current password is wrong.")
		return
	}
	pw := r.PostFormValue("new")
	if pw != r.PostFormValue("repeat") {
		again(http.StatusBadRequest, "The new password and its repetition differ.")
		return
	}
	if err := c.credentials.SetPassword(r.Context(), v.user.ID, pw, v.actor(), v.source); err != nil {
		if errors.Is(err, accounts.ErrInvalid) {
			// The policy's words, on the form, to try again.
			again(status.Of(err), err.Error())
			return
		}
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/password", "password")
}
