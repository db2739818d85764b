package api

import (
	"context"
	"net/http"

	"github.com/cordon-mdm/cordon/internal/httpjson"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// Rollouts runs staged agent rollouts (*releases.Service).
type Rollouts interface {
	CreateRollout(ctx context.Context, r releases.RolloutRequest) (*releases.Rollout, error)
	Rollouts(ctx context.Context) ([]releases.Rollout, error)
	Spread(ctx context.Context) ([]store.VersionCount, error)
	List(ctx context.Context) ([]store.AgentRelease, error)
}

// WithRollouts serves GET and POST /api/v1/agent-rollouts.
func WithRollouts(r Rollouts) Option { return func(a *API) { a.rollouts = r } }

// rolloutBody is POST /api/v1/agent-rollouts.
type rolloutBody struct {
	Version   string `json:"version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	Percent   int    `json:"percent"`
	Group     string `json:"group"`
	Downgrade bool   `json:"downgrade"`
}

// Check bounds the text; the rules (semver, platform, percent, group
// name, downgrade) are the rollout service's.
func (b *rolloutBody) Check() error {
	return input.Texts(map[string]string{"version": b.Version, "os": b.OS, "arch": b.Arch, "group": b.Group}, 64)
}

func (a *API) createRollout(w http.ResponseWriter, r *http.Request) {
	var body rolloutBody
	if !a.decode(w, r, &body) {
		return
	}
	p := principal(r)
	ro, err := a.rollouts.CreateRollout(r.Context(), releases.RolloutRequest{Version: body.Version, OS: body.OS, Arch: body.Arch,
		Percent: body.Percent, Group: body.Group, Downgrade: body.Downgrade, Actor: p.Actor, Role: p.Role, Source: httpjson.RemoteHost(r)})
	if err != nil {
		a.fail(w, err)
		return
	}
	httpjson.Write(w, http.StatusCreated, rolloutJSON(ro))
}

func (a *API) listRollouts(w http.ResponseWriter, r *http.Request) {
	rs, err := a.rollouts.Rollouts(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	spread, err := a.rollouts.Spread(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	rels, err := a.rollouts.List(r.Context())
	if err != nil {
		a.fail(w, err)
		return
	}
	out := make([]map[string]any, 0, len(rs))
	for i := range rs {
		out = append(out, rolloutJSON(&rs[i]))
	}
	vs := make([]map[string]any, 0, len(spread))
	for _, v := range spread {
		vs = append(vs, map[string]any{"os": v.OS, "version": v.Version, "devices": v.Count})
	}
	rl := make([]map[string]any, 0, len(rels))
	for _, v := range rels {
		rl = append(rl, map[string]any{"version": v.Version, "os": v.OS, "arch": v.Arch, "sha256": v.SHA256, "size": v.Size,
			"added_at": timefmt.JSON(v.AddedAt), "added_by": v.AddedBy})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"rollouts": out, "versions": vs, "releases": rl})
}

func rolloutJSON(ro *releases.Rollout) map[string]any {
	return map[string]any{"id": ro.ID, "version": ro.Version, "os": ro.OS, "arch": ro.Arch, "sha256": ro.SHA256,
		"percent": ro.Percent, "group": ro.GroupName, "downgrade": ro.Downgrade, "created_at": timefmt.JSON(ro.CreatedAt),
		"created_by": ro.CreatedBy, "commands": ro.Commands}
}
