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
