//go:build darwin

package state

import (
	"os"
	"path/filepath"
)

// Default is /Library/Application Support/Cordon Agent for root, else the
// user's Application Support.
func Default() string {
	if os.Geteuid() == 0 {
		return "/Library/Application Support/Cordon Agent"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "Library", "Application Support", "Cordon Agent")
}

// systemSocket is where the agent service listens for the tray.
const systemSocket = "/var/run/cordon-agent.sock"
