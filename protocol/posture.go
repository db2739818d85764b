package protocol

import (
	"errors"
	"time"
)

// Posture is one report of a device's state. Each field that a collector
// reads carries where it came from and, when it could not be read, why:
// the server must be able to tell "not encrypted" from "could not tell".
type Posture struct {
	CollectedAt time.Time  `json:"collected_at"`
	OS          OSIdentity `json:"os"`
	// Lock is filled by the collectors issue; absent until then.
	Lock *LockState `json:"lock,omitempty"`
}

// OSIdentity is what the device says it is.
type OSIdentity struct {
	Name         string `json:"name"`    // e.g. "Debian GNU/Linux"
	Version      string `json:"version"` // e.g. "12"
	Build        string `json:"build,omitempty"`
	Kernel       string `json:"kernel,omitempty"`
	Hostname     string `json:"hostname"`
	AgentVersion string `json:"agent_version"`
	Platform     string `json:"platform"` // GOOS/GOARCH
	Source       string `json:"source,omitempty"`
	Error        string `json:"error,omitempty"`
}

// Lock state values.
const (
	LockLocked   = "locked"
	LockUnlocked = "unlocked"
	LockUnknown  = "unknown"
)

// LockState is the session lock reading.
type LockState struct {
	State       string     `json:"state"`
	IdleSeconds *int64     `json:"idle_seconds,omitempty"`
	IdleSince   *time.Time `json:"idle_since,omitempty"`
	Source      string     `json:"source,omitempty"`
	Reason      string     `json:"reason,omitempty"`
}

// Check validates a Posture report.
func (p *Posture) Check() error {
	if p.CollectedAt.IsZero() {
		return errors.New("collected_at is required")
	}
	if p.OS.Platform == "" {
		return errors.New("os.platform is required")
	}
	if p.Lock != nil {
		switch p.Lock.State {
		case LockLocked, LockUnlocked, LockUnknown:
		default:
			return errors.New("lock.state must be locked, unlocked or unknown")
		}
	}
	return checkLens(map[string]string{
		"os.name": p.OS.Name, "os.version": p.OS.Version, "os.build": p.OS.Build,
		"os.kernel": p.OS.Kernel, "os.hostname": p.OS.Hostname,
		"os.agent_version": p.OS.AgentVersion, "os.platform": p.OS.Platform,
	}, 512)
}
