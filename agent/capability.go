package agent

import (
	"slices"

	"github.com/cordon-mdm/cordon/protocol"
)

// announcement is what the agent says in hello that it understands: by
// default this build's protocol.CurrentCapabilityVersion and
// protocol.AgentCapabilities.
type announcement struct {
	version protocol.CapabilityVersion
	caps    []string
}

// WithCapabilities makes the agent announce version v and caps in hello
// instead of this build's own: tests use it to stand in for an older
// agent, which the server must send only what that agent understands.
func WithCapabilities(v protocol.CapabilityVersion, caps []string) Option {
	return func(a *Agent) { a.announce = announcement{version: v, caps: slices.Clone(caps)} }
}
