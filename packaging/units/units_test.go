package units

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
)

// TestUnitsVerify renders both units, the agent's for an odd binary path
// and odd arguments as `cordon-agent install` does, and has
// systemd-analyze verify accept them (it checks every setting's syntax,
// and that ExecStart's binary exists).
func TestUnitsVerify(t *testing.T) {
	analyze := needs.Tool(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	exe := filepath.Join(dir, "my agent%1", "cordon-agent")
	if err := os.MkdirAll(filepath.Dir(exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	server := strings.ReplaceAll(Server(), ServerBinary, exe)
	server = strings.ReplaceAll(server, "ExecStart="+exe, "ExecStart="+quote(exe))
	for name, text := range map[string]string{
		"cordon-agent.service":  Agent(exe, []string{"run", "--state=/var/lib/my state", `--socket=/run/a"b.sock`, "--log-level=$HOME"}, "/var/lib/my state%"),
		"cordon-server.service": server,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s\n%s", name, err, out, text)
		}
	}
}

func TestAgentUnitQuotes(t *testing.T) {
	u := Agent("/opt/c d/cordon-agent", []string{"run", "--state=/x y", "--log-level=50%", "a$b"}, "/x y")
	for _, want := range []string{
		"\nExecStart=\"/opt/c d/cordon-agent\" run \"--state=/x y\" --log-level=50%% a$$b\n",
		"\nConditionPathExists=/x y/agent.json\n",
	} {
		if !strings.Contains(u, want) {
			t.Errorf("unit lacks %q:\n%s", want, u)
		}
	}
	if strings.Contains(u, "{{") || strings.Contains(u, "@STATE@") || strings.Contains(u, "@EXEC_START@") {
		t.Errorf("unit has a template directive or placeholder left:\n%s", u)
	}
	if got := Tray("/opt/c d/cordon-agent"); !strings.Contains(got, "\nExec=\"/opt/c d/cordon-agent\" tray\n") {
		t.Errorf("tray entry:\n%s", got)
	}
}
