package state

import (
	"os"
	"path/filepath"
)

// DefaultSocket is where `cordon-agent run` listens for the tray and
// `cordon-agent report`: the system path when it runs as root (as a
// service), else next to its state.
func DefaultSocket(stateDir string) string {
	if os.Geteuid() == 0 || os.Geteuid() == -1 { // -1: Windows, where the service path is fixed
		return systemSocket
	}
	return filepath.Join(stateDir, "agent.sock")
}

// SocketCandidates are the paths a client tries, in order: the service's,
// then a per-user agent's.
func SocketCandidates() []string {
	return []string{systemSocket, filepath.Join(Default(), "agent.sock")}
}
