//go:build linux && !android

package posture

import (
	"context"
	"os"
	"runtime"
	"strings"

	"github.com/cordon-mdm/cordon/protocol"
)

func osIdentity(context.Context) protocol.OSIdentity {
	id := protocol.OSIdentity{Source: "/etc/os-release"}
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		b, err = os.ReadFile("/usr/lib/os-release")
	}
	if err != nil {
		id.Error = "os-release unreadable: " + err.Error()
	} else {
		kv := parseOSRelease(string(b))
		id.Name = kv["NAME"]
		id.Version = kv["VERSION_ID"]
		id.Build = kv["VERSION"]
		if v := kv["BUILD_ID"]; v != "" {
			id.Build = v
		}
	}
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		id.Kernel = strings.TrimSpace(string(k))
	}
	return id
}

// linuxPlatform reads a desktop Linux system.
type linuxPlatform struct{ unsupported }

func newPlatform() platform {
	return linuxPlatform{unsupported{reason: "not collected on " + runtime.GOOS + " yet"}}
}

func (linuxPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }
