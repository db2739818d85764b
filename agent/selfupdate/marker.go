// Package selfupdate replaces the running agent's binary with a build
// an update command named, and brings the old one back by itself when
// the new one does not connect in time. The old binary, before it
// restarts into the new one, leaves a marker in the state dir and a
// detached watchdog (its own copy, .prev, run as a hidden subcommand):
// a new build that crashes at once or never connects cannot roll itself
// back, so the watchdog does it at the deadline unless the new build has
// marked the marker connected.
package selfupdate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/internal/filelock"
)

// MarkerFile, in the state dir, is the update in progress.
const MarkerFile = "update.json"

// lockFile serialises the marker's changes between the new build and
// the watchdog: exactly one of "connected" and "rolled back" wins.
const lockFile = "update.lock"

// Marker states.
const (
	Pending    = "pending"     // restarted into the new build, not yet connected
	Connected  = "connected"   // the new build connected and authenticated
	RolledBack = "rolled_back" // the watchdog restored the old build
)

// WatchdogCommand is the hidden subcommand the old binary's copy runs
// as: cordon-agent WatchdogCommand --state DIR.
const WatchdogCommand = "__update-watchdog"

// Marker is what the old binary leaves for the new one and for the
// watchdog.
type Marker struct {
	CommandID string    `json:"command_id"`
	From      string    `json:"from_version"`
	To        string    `json:"to_version"`
	SHA256    string    `json:"sha256"`
	Deadline  time.Time `json:"deadline"`
	Timeout   string    `json:"timeout"` // the deadline's length, for the reason
	// PID is the process running the new build: the old one's, since a
	// foreground restart execs in place; the new build records its own
	// (under a service manager it has another).
	PID int `json:"pid"`
	// Args are the agent's own (os.Args), to restart the restored build
	// with in the foreground; Exe is the path replaced.
	Args    []string `json:"args"`
	Exe     string   `json:"exe"`
	Service bool     `json:"service"`
	State   string   `json:"state"`
	Reason  string   `json:"reason,omitempty"`
}

// ReadMarker reads the state dir's marker; nil, nil when there is none.
func ReadMarker(dir string) (*Marker, error) {
	b, err := os.ReadFile(filepath.Join(dir, MarkerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Marker
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", MarkerFile, err)
	}
	return &m, nil
}

// WriteMarker writes m (0600, atomically).
func WriteMarker(dir string, m *Marker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, MarkerFile), b, 0o600)
}

// RemoveMarker removes the marker once its outcome is spooled.
func RemoveMarker(dir string) error {
	err := os.Remove(filepath.Join(dir, MarkerFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// Update changes the marker under the lock that the new build and the
// watchdog share: fn sees the current marker (nil when none) and says
// whether to write it back.
func Update(ctx context.Context, dir string, fn func(m *Marker) bool) (*Marker, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	l, err := filelock.Wait(ctx, filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	defer l.Unlock()
	m, err := ReadMarker(dir)
	if err != nil {
		return nil, err
	}
	if !fn(m) || m == nil {
		return m, nil
	}
	return m, WriteMarker(dir, m)
}

// Started records, when the update in dir is pending for version, this
// process as the one running the new build: under a service manager it
// is not the process that wrote the marker, and the watchdog must know
// whom to end.
func Started(ctx context.Context, dir, version string) error {
	_, err := Update(ctx, dir, func(m *Marker) bool {
		if m == nil || m.State != Pending || m.To != version || m.PID == os.Getpid() {
			return false
		}
		m.PID = os.Getpid()
		return true
	})
	return err
}
