package server

import (
	"context"
	"os"

	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// AddAgentRelease keeps the agent build in path for update commands
// (agent-release add), audited as agent_release.added.
func (a *Admin) AddAgentRelease(ctx context.Context, path, version, goos, arch string) (*store.AgentRelease, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return a.releases().Add(ctx, releases.AddRequest{File: f, Version: version, OS: goos, Arch: arch, Actor: a.actor, Source: "local"})
}

// AgentReleases lists the builds kept.
func (a *Admin) AgentReleases(ctx context.Context) ([]store.AgentRelease, error) {
	return a.releases().List(ctx)
}

// releases is the release keeper on this data dir; the host commands
// issue no updates (serve's rollouts do).
func (a *Admin) releases() *releases.Service { return releases.New(a.Store, a.Audit, a.dataDir) }
