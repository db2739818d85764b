package console

import (
	"context"
	"net/http"
	"strings"

	"github.com/cordon-mdm/cordon/server/status"
)

// AppleProfiles hands out a token's signed Apple enrollment profile
// (appleprofile.Issuer).
type AppleProfiles interface {
	Issue(ctx context.Context, token, actor, source string) ([]byte, error)
}

// WithAppleProfiles lets IT download a token's Apple enrollment profile
// from the tokens page. Without it (no Apple MDM) the page offers none.
func WithAppleProfiles(p AppleProfiles) Option { return func(c *Console) { c.appleProfiles = p } }

// appleProfile answers the token IT pasted (or just made) with its signed
// .mobileconfig, to open on the iPhone, iPad or Mac.
func (c *Console) appleProfile(w http.ResponseWriter, r *http.Request, v *visit) {
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		c.render(w, r, http.StatusBadRequest, "tokens", v, c.tokensView(tokensView{}, "token: is required"))
		return
	}
	signed, err := c.appleProfiles.Issue(r.Context(), token, v.actor(), v.source)
	if err != nil {
		if code := status.Of(err); code < http.StatusInternalServerError {
			c.render(w, r, code, "tokens", v, c.tokensView(tokensView{}, err.Error()))
			return
		}
		c.refused(w, r, v, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-apple-aspen-config")
	w.Header().Set("Content-Disposition", `attachment; filename="cordon-enrollment.mobileconfig"`)
	w.Write(signed)
}

// tokensView is the tokens page's view: a token just made, if any, and
// whether Apple enrollment profiles are offered.
func (c *Console) tokensView(d tokensView, msg string) view {
	d.Apple = c.appleProfiles != nil
	d.Packages = c.agentPackages != nil
	return view{Title: "Enrollment tokens", Error: msg, D: d}
}
