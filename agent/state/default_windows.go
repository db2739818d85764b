//go:build windows

package state

import (
	"os"
	"path/filepath"
)

// Default is %ProgramData%\Cordon Agent.
func Default() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "Cordon Agent")
}

// systemSocket is where the agent service listens for the tray (AF_UNIX,
// Windows 10 and later).
var systemSocket = filepath.Join(Default(), "agent.sock")
