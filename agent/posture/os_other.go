//go:build !linux && !darwin && !windows

package posture

import (
	"context"
	"runtime"

	"github.com/cordon-mdm/cordon/protocol"
)

func osIdentity(context.Context) protocol.OSIdentity {
	return protocol.OSIdentity{Name: runtime.GOOS, Error: "no OS identity collector for " + runtime.GOOS}
}

// otherPlatform reads other. Sections not yet collected here answer unknown.
type otherPlatform struct{ unsupported }

func newPlatform() platform {
	return otherPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (otherPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }
