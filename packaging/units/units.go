// Package units holds the service definitions Cordon installs: the
// hardened systemd units of the agent and the server, and the tray's XDG
// autostart entry. The packages (packaging) and `cordon-agent install`
// (agent/service) both render them from here, so a packaged agent and one
// installed by hand run under the same unit. It imports only the standard
// library: the agent links it.
package units

import (
	_ "embed"
	"strings"
)

// Where the packages put the units and the tray entry.
const (
	AgentUnitPath  = "/usr/lib/systemd/system/cordon-agent.service"
	ServerUnitPath = "/usr/lib/systemd/system/cordon-server.service"
	TrayAutostart  = "/etc/xdg/autostart/cordon-agent-tray.desktop"
	AgentBinary    = "/usr/bin/cordon-agent"
	ServerBinary   = "/usr/bin/cordon-server"
	AgentState     = "/var/lib/cordon-agent"
)

var (
	//go:embed agent.service
	agentUnit string
	//go:embed server.service
	serverUnit string
	//go:embed tray.desktop
	trayDesktop string
)

// Agent is the agent's systemd unit running exe with args (the packaged
// one: AgentBinary, "run"), for the agent whose state dir is state.
func Agent(exe string, args []string, state string) string {
	cmd := []string{quote(exe)}
	for _, a := range args {
		cmd = append(cmd, quote(a))
	}
	return strings.NewReplacer("@EXEC_START@", strings.Join(cmd, " "), "@STATE@", escapePath(state)).Replace(agentUnit)
}

// Server is the server's systemd unit: cordon-server serve with the
// config file /etc/cordon/server.yaml, as user cordon.
func Server() string { return serverUnit }

// Tray is the XDG autostart entry that starts `exe tray` in every
// graphical session.
func Tray(exe string) string {
	return strings.ReplaceAll(trayDesktop, "@EXEC@", desktopQuote(exe))
}

// quote makes s one word of a systemd command line: specifiers (%) and
// variables ($) are doubled so systemd passes them through, and a word
// with spaces, quotes or backslashes is double-quoted with C escapes.
func quote(s string) string {
	s = strings.NewReplacer("%", "%%", "$", "$$").Replace(s)
	if s != "" && !strings.ContainsAny(s, " \t\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// escapePath doubles % in a path used in a unit setting (not a command
// line, where $ has no meaning).
func escapePath(s string) string { return strings.ReplaceAll(s, "%", "%%") }

// desktopQuote quotes an Exec= program path by the Desktop Entry rules:
// double quotes around a path with reserved characters, with ", `, $ and
// \ escaped by a backslash (and the backslash doubled again for the
// string type), and % doubled.
func desktopQuote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	if !strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`") {
		return s
	}
	r := strings.NewReplacer(`"`, `\\"`, "`", "\\\\`", `$`, `\\$`, `\`, `\\\\`)
	return `"` + r.Replace(s) + `"`
}
