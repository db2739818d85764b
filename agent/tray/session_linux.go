//go:build linux && !android

package tray

import (
	"fmt"
	"os/exec"

	"github.com/godbus/dbus/v5"
)

// checkSession refuses to start without a session bus. systray would log
// and block forever, and godbus would otherwise autolaunch a private bus
// that no tray host listens on.
func checkSession() error {
	c, err := dbus.SessionBusPrivateNoAutoStartup()
	if err == nil {
		defer c.Close()
		if err = c.Auth(nil); err == nil {
			err = c.Hello()
		}
	}
	if err != nil {
		return fmt.Errorf("no D-Bus session bus (the tray runs in a desktop session): %w", err)
	}
	return nil
}

// hostPresent reports whether a tray host is listening.
func hostPresent() bool {
	c, err := dbus.SessionBusPrivateNoAutoStartup()
	if err != nil {
		return false
	}
	defer c.Close()
	if c.Auth(nil) != nil || c.Hello() != nil {
		return false
	}
	var has bool
	c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.kde.StatusNotifierWatcher").Store(&has)
	return has
}

func openBrowser(url string) error { return exec.Command("xdg-open", url).Start() }
