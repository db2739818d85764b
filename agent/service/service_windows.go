package service

import (
	"errors"

	ks "github.com/kardianos/service"
	"golang.org/x/sys/windows/registry"
)

// options: an automatic-start service that the SCM restarts on failure
// (an update exits the agent on purpose: it comes back on the new build).
func options(exe string, c Config) ks.KeyValue {
	return ks.KeyValue{"StartType": "automatic", "OnFailure": "restart", "OnFailureDelayDuration": "5s", "OnFailureResetPeriod": 60}
}

func packaged() bool { return false }

// managed: started by the SCM, the process must answer it.
func managed() bool { return !ks.Interactive() }

// runKey is the machine-wide Run key: its values start in every user's
// session at sign-in.
const (
	runKey   = `Software\Microsoft\Windows\CurrentVersion\Run`
	runValue = "CordonAgentTray"
)

type runKeyAutostart struct{}

func newAutostart() autostart { return runKeyAutostart{} }

func (runKeyAutostart) where() string { return `HKLM\` + runKey + `\` + runValue }

func (runKeyAutostart) install(exe string) error {
	k, _, err := registry.CreateKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	return k.SetStringValue(runValue, `"`+exe+`" tray`)
}

func (runKeyAutostart) uninstall() error {
	k, err := registry.OpenKey(registry.LOCAL_MACHINE, runKey, registry.SET_VALUE)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.DeleteValue(runValue); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return err
	}
	return nil
}

func afterUninstall() error { return nil }
