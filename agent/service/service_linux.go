//go:build linux && !android

package service

import (
	"errors"
	"os"
	"path/filepath"

	ks "github.com/kardianos/service"

	"github.com/cordon-mdm/cordon/packaging/units"
)

// options: on systemd the unit is the packages' hardened one, rendered
// for this binary and these arguments (no template directives left, so
// kardianos writes it as it is). Without systemd (a container, SysV init)
// kardianos writes its own init script.
func options(exe string, c Config) ks.KeyValue {
	state := c.State
	if state == "" {
		state = units.AgentState
	}
	return ks.KeyValue{
		"SystemdScript": units.Agent(exe, append([]string{"run"}, c.Args...), state),
		"Restart":       "always",
	}
}

// packaged: the package's unit is there.
func packaged() bool {
	_, err := os.Stat(units.AgentUnitPath)
	return err == nil
}

func managed() bool { return false }

// xdgAutostart writes the XDG autostart entry every desktop (GNOME, KDE,
// XFCE...) reads for every user session.
type xdgAutostart struct{ path string }

func newAutostart() autostart { return xdgAutostart{path: units.TrayAutostart} }

func (a xdgAutostart) where() string { return a.path }

func (a xdgAutostart) install(exe string) error {
	if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
		return err
	}
	return writeFile(a.path, []byte(units.Tray(exe)), 0o644)
}

func (a xdgAutostart) uninstall() error { return os.Remove(a.path) }

// afterUninstall removes the /etc/rc?.d links kardianos' SysV install
// made: its uninstall deletes only /etc/init.d/cordon-agent and would
// leave them dangling.
func afterUninstall() error {
	links, _ := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]" + Name)
	var errs []error
	for _, l := range links {
		if t, err := os.Readlink(l); err == nil && filepath.Base(t) == Name {
			if err := os.Remove(l); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
