package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/store"
)

// Accounts is the account lifecycle (server/accounts).
type Accounts interface {
	Disable(ctx context.Context, id, actor, source string) (*store.User, error)
	Enable(ctx context.Context, id, actor, source string) (*store.User, error)
	SetRole(ctx context.Context, id, role, actor, source string) (*store.User, error)
}

// UserReader lists console users.
type UserReader interface {
	ListUsers(ctx context.Context) ([]store.User, error)
}

// WithAccounts serves the user routes.
func WithAccounts(a Accounts, r UserReader) Option {
	return func(api *API) { api.accounts, api.userReader = a, r }
}

// userJSON is a console user as the API shows one: never a hash, a
// secret or a recovery code.
func userJSON(u *store.User) map[string]any {
	out := map[string]any{"id": u.ID, "email": u.Email, "role": u.Role, "disabled": u.DisabledAt != nil,
		"mfa": u.TOTPSecret != "", "locked": u.LockedAt != nil, "created_at": timefmt.JSON(u.CreatedAt)}
	if u.DisabledAt != nil {
		out["disabled_at"] = timefmt.JSON(*u.DisabledAt)
	}
	return out
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := a.userReader.ListUsers(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(us))
	for i := range us {
		out = append(out, userJSON(&us[i]))
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"users": out})
}

func (a *API) userAction(do func(ctx context.Context, id, actor, source string) (*store.User, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := do(r.Context(), r.PathValue("id"), principal(r).Actor, httpjson.RemoteHost(r))
		if err != nil {
			a.fail(w, err)
			return
		}
		httpjson.Write(w, http.StatusOK, userJSON(u))
	}
}

// roleBody is PUT /api/v1/users/{id}/role.
type roleBody struct {
	Role *string `json:"role"`
}

// Check refuses a body without a role (an absent role is not "no change").
func (b *roleBody) Check() error {
	if b.Role == nil || *b.Role == "" {
		return input.Errorf("role", "required: it-admin, laso, auditor or user")
	}
	return input.Text("role", *b.Role, 32)
}

func (a *API) setUserRole(w http.ResponseWriter, r *http.Request) {
	var body roleBody
	if !a.decode(w, r, &body) {
		return
	}
	u, err := a.accounts.SetRole(r.Context(), r.PathValue("id"), *body.Role, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, userJSON(u))
}
