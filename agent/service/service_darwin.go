package service

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"

	ks "github.com/kardianos/service"
)

// options: a launchd daemon (/Library/LaunchDaemons/cordon-agent.plist)
// started at boot and kept alive, as systemd's Restart=always.
func options(exe string, c Config) ks.KeyValue {
	return ks.KeyValue{"KeepAlive": true, "RunAtLoad": true}
}

func packaged() bool { return false }
func managed() bool  { return false }

// TrayAgentPlist is the LaunchAgent that starts the tray in every user's
// GUI session (launchd loads /Library/LaunchAgents for each login).
const TrayAgentPlist = "/Library/LaunchAgents/com.cordon-mdm.agent-tray.plist"

type launchAgent struct{ path string }

func newAutostart() autostart { return launchAgent{path: TrayAgentPlist} }

func (a launchAgent) where() string { return a.path }

func (a launchAgent) install(exe string) error {
	var esc bytes.Buffer
	if err := xml.EscapeText(&esc, []byte(exe)); err != nil {
		return err
	}
	plist := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key><string>com.cordon-mdm.agent-tray</string>
	<key>ProgramArguments</key><array><string>%s</string><string>tray</string></array>
	<key>LimitLoadToSessionType</key><string>Aqua</string>
	<key>RunAtLoad</key><true/>
	<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
</dict>
</plist>
`, esc.String())
	// launchd ignores an agent plist that is not root's and 0644.
	return writeFile(a.path, []byte(plist), 0o644)
}

func (a launchAgent) uninstall() error { return os.Remove(a.path) }

func afterUninstall() error { return nil }
