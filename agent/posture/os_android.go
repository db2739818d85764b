//go:build android

package posture

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/agent/posture/android"
	"github.com/cordon-mdm/cordon/protocol"
)

// getpropPath is absolute so that an app's PATH cannot substitute
// another program for the one the system ships.
const (
	getpropPath    = "/system/bin/getprop"
	getpropTimeout = 5 * time.Second
)

// readProps lists every system property. One dump per section read keeps
// each section consistent with itself and costs a few milliseconds.
func readProps(ctx context.Context) android.Props {
	ctx, cancel := context.WithTimeout(ctx, getpropTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, getpropPath).Output()
	if err != nil {
		err = fmt.Errorf("%s: %w", getpropPath, err)
	}
	return android.PropsFromGetprop(out, err)
}

func osIdentity(ctx context.Context) protocol.OSIdentity {
	id := android.OSIdentity(readProps(ctx))
	if k, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		id.Kernel = strings.TrimSpace(string(k))
	}
	return id
}

// androidPlatform reads system properties itself and takes the lock and
// Bluetooth from the host app, the only part of the agent that can call
// KeyguardManager, DevicePolicyManager and BluetoothAdapter. With no host
// (a bare executable), those sections say so.
type androidPlatform struct {
	unsupported
	host *android.Host
}

func newPlatform() platform { return newAndroidPlatform(nil) }

func newAndroidPlatform(h *android.Host) *androidPlatform {
	return &androidPlatform{unsupported: unsupported{reason: "not collected on Android"}, host: h}
}

// WithAndroidHost takes the lock state, lock policy and Bluetooth from h,
// which the host app feeds. Lock changes it reports reach the agent at
// once through WatchLock.
func WithAndroidHost(h *android.Host) Option {
	return func(s *System) { s.p = newAndroidPlatform(h) }
}

func (*androidPlatform) identity(ctx context.Context) protocol.OSIdentity { return osIdentity(ctx) }

func (p *androidPlatform) lock(context.Context) *protocol.LockState { return p.host.Lock() }

func (p *androidPlatform) lockPolicy(context.Context) *protocol.LockPolicy {
	return p.host.LockPolicy()
}

func (p *androidPlatform) bluetooth(context.Context) *protocol.Bluetooth { return p.host.Bluetooth() }

func (*androidPlatform) disk(ctx context.Context) *protocol.DiskEncryption {
	return android.Disk(readProps(ctx))
}

func (*androidPlatform) patch(ctx context.Context) *protocol.PatchLevel {
	return android.Patch(readProps(ctx))
}

func (*androidPlatform) hygiene(ctx context.Context) *protocol.Hygiene {
	return android.Hygiene(readProps(ctx), android.SuEvidence(os.Getenv("PATH"), os.Stat))
}

func (p *androidPlatform) watchLock(ctx context.Context, changed func()) error {
	if p.host == nil {
		return p.unsupported.watchLock(ctx, changed)
	}
	ch, cancel := p.host.SubscribeLock()
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			changed()
		}
	}
}
