//go:build android

package posture

import (
	"context"
	"os"
	"os/exec"
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
