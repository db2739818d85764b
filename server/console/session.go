package console

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Cookies. The __Host- prefix makes the browser refuse them unless they
// are Secure, host-only and for the whole path, so no other site or
// subdomain can plant one. SameSite=Strict keeps them off cross-site
// requests; the CSRF token is the second, independent line.
const (
	sessionCookie = "__Host-cordon-session"
	// preCookie carries the CSRF token of the pages before sign-in
	// (double-submit: the form repeats the cookie).
	preCookie = "__Host-cordon-pre"
	// ackCookie records that this browser acknowledged the system-use
	// notification for the sign-in about to happen.
	ackCookie = "__Host-cordon-ack"
)

// Actions this package records.
const (
	ActionLogin       = "console.login"
	ActionLogout      = "console.logout"
	ActionSessionLock = "console.session_locked"
	ActionDenied      = "console.denied"
	ActionStepUp      = "console.step_up"
	ActionBannerAck   = "console.banner_acknowledged"
	ActionUserLocked  = "user.locked"
)

// visit is the signed-in caller of a console handler.
type visit struct {
	session *store.Session
	user    *store.User
	source  string
}

func (v *visit) actor() string { return "user:" + v.user.Email }

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionID(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: maxAge})
}

func clearCookie(w http.ResponseWriter, name string) { setCookie(w, name, "", -1) }

func sameToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin refuses a POST whose Origin names another site. Browsers
// send Origin on every POST; its absence (a script, not a browser) is
// left to the CSRF token.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// open registers a page anyone may reach; its POSTs carry the pre-sign-in
// CSRF token.
func (c *Console) open(pattern string, h http.HandlerFunc) {
	c.routes = append(c.routes, Route{Pattern: pattern})
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			ck, err := r.Cookie(preCookie)
			if err != nil || !sameOrigin(r) || !sameToken(ck.Value, r.PostFormValue("csrf")) {
				c.refuse(w, r, nil, "anonymous", http.StatusForbidden, "missing or wrong CSRF token")
				return
			}
		}
		h(w, r)
	})
}

// partial registers a step of sign-in that needs the password step done
// (the second factor, its enrollment, signing out).
func (c *Console) partial(pattern string, h func(http.ResponseWriter, *http.Request, *visit)) {
	c.routes = append(c.routes, Route{Pattern: pattern, Roles: []string{"*signed-in"}})
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, ok := c.visit(w, r)
		if !ok {
			return
		}
		h(w, r, v)
	})
}

// page registers a page or action for fully signed-in users of roles.
func (c *Console) page(pattern string, h func(http.ResponseWriter, *http.Request, *visit), roles ...string) {
	c.routes = append(c.routes, Route{Pattern: pattern, Roles: roles})
	c.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		v, ok := c.visit(w, r)
		if !ok {
			return
		}
		switch v.session.Stage {
		case stageMFA:
			http.Redirect(w, r, "/console/mfa", http.StatusSeeOther)
			return
		case stageEnroll:
			http.Redirect(w, r, "/console/mfa/enroll", http.StatusSeeOther)
			return
		}
		if !c.allowed(v.user.Role, pattern) {
			c.refuse(w, r, v, v.actor(), http.StatusForbidden, "role "+v.user.Role+" may not do this")
			return
		}
		h(w, r, v)
	})
}

// Session stages.
const (
	stageMFA    = "mfa"
	stageEnroll = "enroll"
	stageActive = "active"
)

// visit loads the caller's session: none, idle past the limit or too old
// sends the browser to the banner (and ends the session, audited); a POST
// must carry the session's CSRF token. Activity is recorded.
func (c *Console) visit(w http.ResponseWriter, r *http.Request) (*visit, bool) {
	ctx := r.Context()
	src := httpjson.RemoteHost(r)
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		c.toBanner(w, r, "")
		return nil, false
	}
	s, err := c.sessions.GetSession(ctx, sessionID(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		clearCookie(w, sessionCookie)
		c.toBanner(w, r, "ended")
		return nil, false
	}
	if err != nil {
		c.fail(w, r, err)
		return nil, false
	}
	u, err := c.sessions.GetUser(ctx, s.UserID)
	if err != nil {
		c.sessions.DeleteSession(ctx, s.ID)
		clearCookie(w, sessionCookie)
		c.toBanner(w, r, "")
		return nil, false
	}
	if u.DisabledAt != nil {
		// Disabling ends the sessions in the same transaction; this is the
		// second line, for a session that raced the disable.
		c.sessions.DeleteSession(ctx, s.ID)
		clearCookie(w, sessionCookie)
		c.refuseSession(r, u.Email, src)
		c.toBanner(w, r, "ended")
		return nil, false
	}
	now := c.now()
	if expired(s, now) {
		c.endSession(ctx, s, u.Email, src, now)
		clearCookie(w, sessionCookie)
		clearCookie(w, ackCookie)
		c.toBanner(w, r, "idle")
		return nil, false
	}
	if r.Method == http.MethodPost && (!sameOrigin(r) || !sameToken(s.CSRF, r.PostFormValue("csrf"))) {
		c.refuse(w, r, nil, "user:"+u.Email, http.StatusForbidden, "missing or wrong CSRF token")
		return nil, false
	}
	s.LastSeen = now
	if err := c.sessions.SaveSession(ctx, s); err != nil {
		c.fail(w, r, err)
		return nil, false
	}
	return &visit{session: s, user: u, source: src}, true
}

func expired(s *store.Session, now time.Time) bool {
	return now.Sub(s.LastSeen) >= IdleLimit || now.Sub(s.CreatedAt) >= maxSession
}

// endSession ends an idle or too old session and records why, once:
// whoever deletes it (the visit or the sweep) writes the entry.
func (c *Console) endSession(ctx context.Context, s *store.Session, email, src string, now time.Time) {
	reason := "idle for " + now.Sub(s.LastSeen).Round(time.Second).String()
	if now.Sub(s.LastSeen) < IdleLimit {
		reason = "session older than " + maxSession.String()
	}
	if gone, err := c.sessions.DeleteSession(ctx, s.ID); err == nil && gone {
		c.record(ctx, "user:"+email, src, ActionSessionLock, "user:"+email, audit.Success,
			map[string]string{"reason": reason, "signed_in_from": s.Source})
	}
}

// ExpireSessions ends the sessions nobody came back to (the server's
// sweep calls it), so the trail shows every session's end.
func (c *Console) ExpireSessions(ctx context.Context) error {
	now := c.now()
	ss, err := c.sessions.SessionsIdleSince(ctx, now.Add(-IdleLimit), now.Add(-maxSession))
	if err != nil {
		return err
	}
	for i := range ss {
		email := "unknown"
		if u, err := c.sessions.GetUser(ctx, ss[i].UserID); err == nil {
			email = u.Email
		}
		c.endSession(ctx, &ss[i], email, "server", now)
	}
	return nil
}

// refuseSession audits a request on the session of a disabled user.
func (c *Console) refuseSession(r *http.Request, email, src string) {
	c.record(r.Context(), "user:"+email, src, ActionDenied, r.Method+" "+r.URL.Path, audit.Denied,
		map[string]string{"reason": "account disabled"})
}

// toBanner sends a visitor without a session to the start of sign-in.
func (c *Console) toBanner(w http.ResponseWriter, r *http.Request, why string) {
	to := "/console/banner"
	if why != "" {
		to += "?why=" + why
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// refuse answers status with a page (with the console's menu when v, the
// signed-in visit, is known), and audits the refusal.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, v *visit, actor string, status int, reason string) {
	c.record(r.Context(), actor, httpjson.RemoteHost(r), ActionDenied, r.Method+" "+r.URL.Path, audit.Denied,
		map[string]string{"reason": reason})
	c.render(w, r, status, "error", v, view{Title: "Refused", Error: reason})
}

func (c *Console) record(ctx context.Context, actor, source, action, target, outcome string, details map[string]string) {
	if err := c.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: action, Target: target,
		Outcome: outcome, Details: details}); err != nil {
		c.log.Error("audit", "action", action, "err", err)
	}
}

// fail answers 500 without detail; the log has it.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	c.log.Error("console", "path", r.URL.Path, "err", err)
	c.render(w, r, http.StatusInternalServerError, "error", nil, view{Title: "Error", Error: "internal error"})
}

// view is what every template gets.
type view struct {
	Title string
	Error string
	Flash string
	CSRF  string
	User  *store.User
	D     any
	can   func(pattern string) bool
}

// Can says whether the viewer may use a route, so a page offers only
// what the server would accept.
func (v view) Can(pattern string) bool { return v.can != nil && v.can(pattern) }

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, page string, v *visit, data view) {
	if v != nil {
		data.User = v.user
		data.CSRF = v.session.CSRF
		role := v.user.Role
		if v.session.Stage != stageActive {
			role = ""
		}
		data.can = func(p string) bool { return role != "" && c.allowed(role, p) }
	}
	if data.Flash == "" {
		// A fixed set, so a link cannot make the console say anything.
		data.Flash = flashes[r.URL.Query().Get("done")]
	}
	// Rendered whole before anything is sent, so a template error is a
	// clean 500 rather than half a page.
	var buf bytes.Buffer
	if err := c.pages[page].ExecuteTemplate(&buf, "layout.html", data); err != nil {
		c.log.Error("render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
