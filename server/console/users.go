// Users, API keys and enrollment tokens: the accounts page group.

package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/server/accounts"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/status"
	"github.com/cordon-mdm/cordon/server/store"
)

type userRow struct {
	store.User
	Locked   bool
	Recovery int
}

type usersView struct {
	Users  []userRow
	Keys   []store.APIKey
	NewKey string
	Roles  []string
}

func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, v *visit) {
	c.showUsers(w, r, v, http.StatusOK, "", "")
}

func (c *Console) showUsers(w http.ResponseWriter, r *http.Request, v *visit, status int, newKey, msg string) {
	ctx := r.Context()
	us, err := c.users.ListUsers(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	uv := usersView{NewKey: newKey, Roles: []string{auth.RoleITAdmin, auth.RoleLASO, auth.RoleAuditor, auth.RoleUser}}
	for _, u := range us {
		locked, _ := c.lockout.Locked(&u, c.now())
		uv.Users = append(uv.Users, userRow{User: u, Locked: locked, Recovery: auth.RecoveryCodesLeft(u.RecoveryCodes)})
	}
	if uv.Keys, err = c.users.ListAPIKeys(ctx); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "users", v, view{Title: "Users and API keys", Error: msg, D: uv})
}

func (c *Console) unlockUser(w http.ResponseWriter, r *http.Request, v *visit) {
	if _, err := c.userAdmin.Unlock(r.Context(), r.PathValue("id"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/users", "unlocked")
}

func (c *Console) disableUser(w http.ResponseWriter, r *http.Request, v *visit) {
	if _, err := c.userAdmin.Disable(r.Context(), r.PathValue("id"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	if r.PathValue("id") == v.user.ID {
		// Their own session ended with the others.
		clearCookie(w, sessionCookie)
		c.toBanner(w, r, "ended")
		return
	}
	done(w, r, "/console/users", "user-off")
}

func (c *Console) enableUser(w http.ResponseWriter, r *http.Request, v *visit) {
	if _, err := c.userAdmin.Enable(r.Context(), r.PathValue("id"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/users", "user-on")
}

func (c *Console) setUserRole(w http.ResponseWriter, r *http.Request, v *visit) {
	if _, err := c.userAdmin.SetRole(r.Context(), r.PathValue("id"), r.PostFormValue("role"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	if r.PathValue("id") == v.user.ID {
		clearCookie(w, sessionCookie)
		c.toBanner(w, r, "ended")
		return
	}
	done(w, r, "/console/users", "role")
}

func (c *Console) createAPIKey(w http.ResponseWriter, r *http.Request, v *visit) {
	name, role := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	text, _, err := c.userAdmin.CreateAPIKey(r.Context(), name, role, v.actor(), v.source)
	if errors.Is(err, accounts.ErrInvalid) {
		c.showUsers(w, r, v, status.Of(err), "", err.Error())
		return
	}
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	// Shown in this response only; the database keeps a hash.
	c.showUsers(w, r, v, http.StatusCreated, text, "")
}

func (c *Console) disableAPIKey(w http.ResponseWriter, r *http.Request, v *visit) {
	if err := c.userAdmin.DisableAPIKey(r.Context(), r.PathValue("id"), v.actor(), v.source); err != nil {
		c.refused(w, r, v, err)
		return
	}
	done(w, r, "/console/users", "key-off")
}

type tokensView struct {
	Token   string
	Expires time.Time
	Apple   bool // Apple enrollment profiles are offered
	// Packages: agent packages are offered.
	Packages bool
}

func (c *Console) tokensPage(w http.ResponseWriter, r *http.Request, v *visit) {
	c.render(w, r, http.StatusOK, "tokens", v, c.tokensView(tokensView{}, ""))
}

func (c *Console) createToken(w http.ResponseWriter, r *http.Request, v *visit) {
	// An empty field takes the default; a value is taken as given, so
	// "0s" or 0 is refused with the range rather than becoming the default.
	req := enroll.TokenRequest{Owner: strings.TrimSpace(r.PostFormValue("owner")), TTL: enroll.DefaultTTL, Uses: enroll.DefaultUses}
	if s := strings.TrimSpace(r.PostFormValue("ttl")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "tokens", v, c.tokensView(tokensView{}, "valid for: "+err.Error()))
			return
		}
		req.TTL = d
	}
	if s := strings.TrimSpace(r.PostFormValue("uses")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			c.render(w, r, http.StatusBadRequest, "tokens", v, c.tokensView(tokensView{}, "uses must be a number"))
			return
		}
		req.Uses = n
	}
	text, exp, err := c.tokens.CreateToken(r.Context(), req, v.actor(), v.source)
	if errors.Is(err, enroll.ErrInvalid) {
		c.render(w, r, status.Of(err), "tokens", v, c.tokensView(tokensView{}, err.Error()))
		return
	}
	if err != nil {
		c.refused(w, r, v, err)
		return
	}
	c.render(w, r, http.StatusCreated, "tokens", v, c.tokensView(tokensView{Token: text, Expires: exp}, ""))
}
