package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
)

// AppleProfiles hands out a token's signed Apple enrollment profile
// (appleprofile.Issuer).
type AppleProfiles interface {
	Issue(ctx context.Context, token, actor, source string) ([]byte, error)
}

// WithAppleEnrollment serves POST /api/v1/apple/enrollment-profile.
func WithAppleEnrollment(p AppleProfiles) Option { return func(a *API) { a.apple = p } }

func (a *API) appleEnrollmentProfile(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token *string `json:"token"`
	}
	if !a.decode(w, r, &body) {
		return
	}
	if body.Token == nil {
		a.fail(w, input.Errorf("token", "is required"))
		return
	}
	signed, err := a.apple.Issue(r.Context(), *body.Token, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="cordon-enrollment.mobileconfig"`)
	w.Write(signed)
}
