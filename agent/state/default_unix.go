//go:build !windows && !darwin

package state

import (
	"os"
	"path/filepath"
)

// Default is /var/lib/cordon-agent for root, else
// $XDG_STATE_HOME/cordon-agent (~/.local/state/cordon-agent).
func Default() string {
	if os.Geteuid() == 0 {
		return "/var/lib/cordon-agent"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" {
		return filepath.Join(x, "cordon-agent")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "cordon-agent")
}

// systemSocket is where the agent service listens for the tray.
const systemSocket = "/run/cordon-agent.sock"
