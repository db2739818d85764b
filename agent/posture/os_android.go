//go:build android

package posture

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

func getprop(ctx context.Context, name string) string {
	out, err := exec.CommandContext(ctx, "getprop", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func osIdentity(ctx context.Context) protocol.OSIdentity {
	id := protocol.OSIdentity{Name: "Android", Source: "getprop"}
	id.Version = getprop(ctx, "ro.build.version.release")
	id.Build = getprop(ctx, "ro.build.fingerprint")
	if id.Version == "" {
		id.Error = "getprop returned no ro.build.version.release"
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		id.Kernel = strings.TrimSpace(string(k))
	}
	return id
}

// androidPlatform reads android. Sections not yet collected here answer unknown.
type androidPlatform struct{ unsupported }

func newPlatform() platform {
	return androidPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (androidPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }
