package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/server/agentpkg"
)

// AgentPackages builds enrollment packages (agentpkg.Builder).
type AgentPackages interface {
	Build(ctx context.Context, req agentpkg.Request, actor, source string) (*agentpkg.Package, error)
}

// WithAgentPackages serves POST /api/v1/agent-packages.
func WithAgentPackages(p AgentPackages) Option { return func(a *API) { a.agentPackages = p } }

// agentPackageBody is POST /api/v1/agent-packages. Absent token_uses and
// ttl take agentpkg's defaults; a present zero is refused with the range.
type agentPackageBody struct {
	OS        string  `json:"os"`
	Arch      string  `json:"arch"`
	Format    string  `json:"format"`
	TokenUses *int    `json:"token_uses"`
	TTL       *string `json:"ttl"`
	Owner     string  `json:"owner"`
}

func (b *agentPackageBody) request() (agentpkg.Request, error) {
	req := agentpkg.Request{OS: b.OS, Arch: b.Arch, Format: b.Format, TokenUses: agentpkg.DefaultTokenUses,
		TTL: agentpkg.DefaultTTL, Owner: b.Owner}
	if b.TokenUses != nil {
		req.TokenUses = *b.TokenUses
	}
	if b.TTL != nil {
		d, err := agentpkg.ParseTTL(*b.TTL)
		if err != nil {
			return req, err
		}
		req.TTL = d
	}
	return req, req.Check()
}

// createAgentPackage answers the package itself: it holds a token, so it
// is shown this once and never cached.
func (a *API) createAgentPackage(w http.ResponseWriter, r *http.Request) {
	var body agentPackageBody
	if !a.decode(w, r, &body) {
		return
	}
	req, err := body.request()
	if err != nil {
		a.fail(w, err)
		return
	}
	pkg, err := a.agentPackages.Build(r.Context(), req, principal(r).Actor, httpjson.RemoteHost(r))
	if err != nil {
		a.fail(w, err)
		return
	}
	pkg.Download(w)
}
