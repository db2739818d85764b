package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
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
		d, err := time.ParseDuration(*b.TTL)
		if err != nil {
			return req, input.Errorf("ttl", "not a duration such as 72h: %q", input.Clip(*b.TTL, 32))
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
	WritePackage(w, pkg)
}

// WritePackage answers a built package as a download (the console's
// form answers the same way).
func WritePackage(w http.ResponseWriter, pkg *agentpkg.Package) {
	h := w.Header()
	h.Set("Content-Type", pkg.ContentType)
	h.Set("Content-Disposition", pkg.ContentDisposition())
	h.Set("Content-Length", strconv.Itoa(len(pkg.Body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Cordon-Token-Id", pkg.TokenID)
	h.Set("X-Cordon-Token-Expires-At", timefmt.JSON(pkg.ExpiresAt))
	h.Set("X-Cordon-Agent-Version", pkg.AgentVersion)
	h.Set("X-Cordon-Package-Sha256", pkg.SHA256)
	w.WriteHeader(http.StatusCreated)
	w.Write(pkg.Body)
}
