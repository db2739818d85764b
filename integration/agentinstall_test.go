package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/packaging/units"
)

// TestAgentInstallUninstall runs the real `cordon-agent install` and
// `uninstall` on this machine (root): kardianos registers the service with
// what runs here (systemd where /run/systemd/system exists, SysV init in
// a container), the tray's XDG autostart entry appears for every session,
// and uninstall takes both away again.
func TestAgentInstallUninstall(t *testing.T) {
	if os.Geteuid() != 0 {
		needs.Missing(t, "cordon-agent install needs root")
	}
	initScript, unit := "/etc/init.d/cordon-agent", "/etc/systemd/system/cordon-agent.service"
	for _, p := range []string{initScript, unit, units.TrayAutostart, units.AgentUnitPath} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists on this machine: the test will not touch it", p)
		}
	}
	_, sdErr := os.Stat("/run/systemd/system")
	systemd := sdErr == nil
	bin := buildBinary(t, "cordon-agent", "")
	state := t.TempDir()
	t.Cleanup(func() {
		exec.Command(bin, "uninstall").Run()
		os.Remove(units.TrayAutostart)
		os.Remove("/var/log/cordon-agent.log") // SysV init's logs of the run
		os.Remove("/var/log/cordon-agent.err")
	})
	out, err := exec.Command(bin, "install", "--state", state, "--keystore", "file").CombinedOutput()
	if err != nil {
		t.Fatalf("install: %v\n%s", err, out)
	}
	t.Logf("install: %s", out)
	// Not enrolled: registered, and deliberately not started (an agent
	// with no enrollment would exit at once).
	if !strings.Contains(string(out), "registered but not started") {
		t.Errorf("install of a state dir with no enrollment did not say it left the service unstarted:\n%s", out)
	}
	registered := initScript
	if systemd {
		registered = unit
	}
	b, err := os.ReadFile(registered)
	if err != nil {
		t.Fatalf("install registered no service at %s: %v\n%s", registered, err, out)
	}
	if !strings.Contains(string(b), bin) || !strings.Contains(string(b), "--state="+state) || !strings.Contains(string(b), "--keystore=file") {
		t.Errorf("%s does not run %s with the install flags:\n%s", registered, bin, b)
	}
	if systemd && !strings.Contains(string(b), "\nProtectSystem=full\n") {
		t.Errorf("the systemd unit is not the hardened one:\n%s", b)
	}
	tray, err := os.ReadFile(units.TrayAutostart)
	if err != nil || !strings.Contains(string(tray), "\nExec="+bin+" tray\n") {
		t.Errorf("tray autostart %s: %v\n%s", units.TrayAutostart, err, tray)
	}
	if out, err := exec.Command(bin, "uninstall").CombinedOutput(); err != nil {
		t.Fatalf("uninstall: %v\n%s", err, out)
	}
	links, _ := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]cordon-agent")
	for _, p := range append([]string{registered, units.TrayAutostart}, links...) {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("uninstall left %s", p)
		}
	}
}
