package console

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/server/agentpkg"
	"github.com/cordon-mdm/cordon/server/status"
)

// AgentPackages builds enrollment packages (agentpkg.Builder).
type AgentPackages interface {
	Build(ctx context.Context, req agentpkg.Request, actor, source string) (*agentpkg.Package, error)
}

// WithAgentPackages lets IT download an agent package with a new
// enrollment token from the tokens page.
func WithAgentPackages(p AgentPackages) Option { return func(c *Console) { c.agentPackages = p } }

// agentPackage answers the form with the package itself: the token in it
// is shown nowhere else.
func (c *Console) agentPackage(w http.ResponseWriter, r *http.Request, v *visit) {
	req, err := agentPackageForm(r)
	if err == nil {
		var pkg *agentpkg.Package
		if pkg, err = c.agentPackages.Build(r.Context(), req, v.actor(), v.source); err == nil {
			pkg.Download(w)
			return
		}
	}
	if code := status.Of(err); code < http.StatusInternalServerError {
		c.render(w, r, code, "tokens", v, c.tokensView(tokensView{}, "agent package: "+err.Error()))
		return
	}
	c.refused(w, r, v, err)
}

// agentPackageForm reads the form as the API reads its body: empty
// fields take the defaults, a value is taken as given.
func agentPackageForm(r *http.Request) (agentpkg.Request, error) {
	req := agentpkg.Request{OS: strings.TrimSpace(r.PostFormValue("os")), Arch: strings.TrimSpace(r.PostFormValue("arch")),
		Format: strings.TrimSpace(r.PostFormValue("format")), Owner: strings.TrimSpace(r.PostFormValue("owner")),
		TokenUses: agentpkg.DefaultTokenUses, TTL: agentpkg.DefaultTTL}
	if s := strings.TrimSpace(r.PostFormValue("token_uses")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return req, input.Errorf("token_uses", "must be a number, got %q", input.Clip(s, 16))
		}
		req.TokenUses = n
	}
	if s := strings.TrimSpace(r.PostFormValue("ttl")); s != "" {
		d, err := agentpkg.ParseTTL(s)
		if err != nil {
			return req, err
		}
		req.TTL = d
	}
	return req, req.Check()
}
