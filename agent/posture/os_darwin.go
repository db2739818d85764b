//go:build darwin

package posture

import (
	"context"
	"os/exec"
	"runtime"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return strings.TrimSpace(string(out)), err
}

func osIdentity(ctx context.Context) protocol.OSIdentity {
	id := protocol.OSIdentity{Source: "sw_vers"}
	var err error
	if id.Name, err = run(ctx, "sw_vers", "-productName"); err != nil {
		id.Error = "sw_vers: " + err.Error()
		return id
	}
	id.Version, _ = run(ctx, "sw_vers", "-productVersion")
	id.Build, _ = run(ctx, "sw_vers", "-buildVersion")
	id.Kernel, _ = run(ctx, "uname", "-r")
	return id
}

// darwinPlatform reads darwin. Sections not yet collected here answer unknown.
type darwinPlatform struct{ unsupported }

func newPlatform() platform {
	return darwinPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (darwinPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }
