// Package posture collects the device's posture for the agent's reports.
// The portable Collector calls one per-OS function per field, each in its
// own _linux.go / _darwin.go / _windows.go / _android.go file; a value
// that cannot be read is reported with the reason, never as a default.
package posture

import (
	"context"
	"os"
	"runtime"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// Collector produces a posture report.
type Collector interface {
	Collect(ctx context.Context) (protocol.Posture, error)
}

// System collects from the running system.
type System struct {
	AgentVersion string
}

// Collect implements Collector.
func (s System) Collect(ctx context.Context) (protocol.Posture, error) {
	id := osIdentity(ctx)
	id.AgentVersion = s.AgentVersion
	id.Platform = runtime.GOOS + "/" + runtime.GOARCH
	if h, err := os.Hostname(); err == nil {
		id.Hostname = h
	}
	return protocol.Posture{CollectedAt: time.Now().UTC(), OS: id}, nil
}

// Facts returns what enrollment reports about the device.
func Facts(ctx context.Context, agentVersion string) protocol.DeviceFacts {
	p, _ := System{AgentVersion: agentVersion}.Collect(ctx)
	return protocol.DeviceFacts{Hostname: p.OS.Hostname, Platform: p.OS.Platform, OSName: p.OS.Name,
		OSVersion: p.OS.Version, AgentVersion: agentVersion}
}
