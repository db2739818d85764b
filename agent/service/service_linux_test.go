//go:build linux && !android

package service

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/packaging/units"
)

// TestTrayAutostart writes and removes the XDG autostart entry (in a temp
// dir instead of /etc/xdg/autostart).
func TestTrayAutostart(t *testing.T) {
	a := xdgAutostart{path: filepath.Join(t.TempDir(), "xdg", "autostart", "cordon-agent-tray.desktop")}
	if err := a.install("/opt/cordon/cordon-agent"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(a.path)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(a.path); st.Mode().Perm() != 0o644 {
		t.Errorf("entry mode %v, want 0644 (every session reads it)", st.Mode())
	}
	for _, want := range []string{"[Desktop Entry]\n", "\nType=Application\n", "\nExec=/opt/cordon/cordon-agent tray\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("entry lacks %q:\n%s", want, b)
		}
	}
	if err := a.uninstall(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.path); !os.IsNotExist(err) {
		t.Errorf("uninstall left the entry: %v", err)
	}
}

// TestInstallUsesThePackagedUnit: on systemd, what kardianos writes is
// the packages' hardened unit for this binary and these run flags.
func TestInstallUsesThePackagedUnit(t *testing.T) {
	c := Config{Args: []string{"--state=/srv/cordon state", "--keystore=file"}, State: "/srv/cordon state"}
	got := options("/usr/local/bin/cordon-agent", c)["SystemdScript"].(string)
	if want := units.Agent("/usr/local/bin/cordon-agent", append([]string{"run"}, c.Args...), c.State); got != want {
		t.Fatalf("SystemdScript is not the packaged unit:\n%s", got)
	}
	if !strings.Contains(got, "\nExecStart=/usr/local/bin/cordon-agent run \"--state=/srv/cordon state\" --keystore=file\n") {
		t.Errorf("ExecStart:\n%s", got)
	}
	s, err := c.service("/usr/local/bin/cordon-agent")
	if err != nil {
		t.Fatal(err)
	}
	// kardianos chooses systemd only where it runs; in a container it is
	// SysV init. Say which this machine is.
	_, sd := os.Stat("/run/systemd/system")
	want := "linux-systemd"
	if sd != nil {
		want = "unix-systemv"
	}
	if s.Platform() != want {
		t.Errorf("service system %q, want %q here", s.Platform(), want)
	}
}
