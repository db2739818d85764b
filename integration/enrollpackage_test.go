package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/filelock"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/agentpkg"
)

// dpkgLock serialises the tests that install packages on this machine:
// dpkg takes its own lock and refuses a second dpkg meanwhile.
const dpkgLock = "/tmp/cordon-dpkg.lock"

// Where the agent package puts things on the machine.
const (
	pkgAgentBin   = "/usr/bin/cordon-agent"
	pkgAgentState = "/var/lib/cordon-agent"
)

// TestEnrollmentPackage is acceptance point 2 of issue 20: an agent
// package from `cordon-server package agent`, installed with dpkg -i,
// enrolls this machine against a running server and the agent (run in
// the foreground: there is no init here) brings the device online; a
// second install keeps that one device; a package whose token expired
// is refused by dpkg -i with the server's reason.
func TestEnrollmentPackage(t *testing.T) {
	dpkg := needs.Tool(t, "dpkg", "dpkg")
	if os.Geteuid() != 0 {
		needs.Missing(t, "installing a package needs root")
	}
	for _, p := range []string{pkgAgentState, agentpkg.EnrollFilePath} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists already: a real agent's? This test installs and purges the agent package; remove it to run the test", p)
		}
	}
	agentBin := buildBinary(t, "cordon-agent", "")
	serverBin := buildServer(t, "")
	const version = "1.0.0"
	// The API's packages take their binary from the agent releases the
	// server keeps: the one just built, added as IT would add it.
	e := testenv.New(t, "")
	itAdmin := e.APIKey("it-admin")
	if out, err := exec.Command(serverBin, "agent-release", "add", agentBin, "--version", version, "--os", "linux",
		"--arch", runtime.GOARCH, "--data", e.DataDir).CombinedOutput(); err != nil {
		t.Fatalf("agent-release add: %v\n%s", err, out)
	}
	t.Cleanup(func() { uninstallAgentPackage(t, dpkg) })

	// Made first, so that its minute runs out while the rest is tested.
	expired, expiredAt := apiAgentPackage(t, e, itAdmin)

	dir := t.TempDir()
	deb := filepath.Join(dir, "agent.deb")
	pout, err := exec.Command(serverBin, "package", "agent", "--data", e.DataDir, "--os", "linux", "--arch", runtime.GOARCH,
		"--format", "deb", "--token-uses", "400", "--ttl", "72h", "--agent-binary", agentBin, "--agent-version", version,
		"--out", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("package agent: %v\n%s", err, pout)
	}
	if fi, err := os.Stat(deb); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the package file: %v %v (want 0600: it holds a token)", fi, err)
	}
	built := e.Audit(agentpkg.ActionBuilt)
	if len(built) != 2 {
		t.Fatalf("agent_package.built entries: %+v", built)
	}
	for _, b := range built {
		if b.Details["token_id"] == "" || b.Details["os"] != "linux" || b.Details["format"] != "deb" || b.Details["token_uses"] == "" {
			t.Errorf("audit entry %+v", b)
		}
		for _, v := range b.Details {
			if strings.HasPrefix(v, "cdt_") {
				t.Errorf("the audit entry holds the token itself: %+v", b)
			}
		}
	}

	before := e.CountDevices()
	out := dpkgInstall(t, dpkg, deb)
	if !strings.Contains(out, "enrolled as device") {
		t.Fatalf("dpkg -i did not enroll:\n%s", out)
	}
	if fi, err := os.Stat(agentpkg.EnrollFilePath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v %v (want 0600)", agentpkg.EnrollFilePath, fi, err)
	}
	cfg, err := (state.Dir{Path: pkgAgentState}).LoadConfig()
	if err != nil {
		t.Fatalf("the installed agent's state: %v", err)
	}
	if n := e.CountDevices(); n != before+1 {
		t.Fatalf("devices after the install: %d, want %d", n, before+1)
	}

	// The service is not started here (no systemd): the agent runs in
	// the foreground, as the unit would run it.
	agent := exec.Command(pkgAgentBin, "run")
	var agentLog bytes.Buffer
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", agentLog.String())
		}
	})
	var dev struct {
		ID     string `json:"id"`
		Online bool   `json:"online"`
	}
	testenv.Eventually(t, 30*time.Second, "the packaged device online", func() bool {
		return e.Do("GET", "/api/v1/devices/"+cfg.DeviceID, itAdmin, nil, &dev) == 200 && dev.Online
	})

	out = dpkgInstall(t, dpkg, deb)
	if !strings.Contains(out, "already enrolled as device "+cfg.DeviceID) {
		t.Fatalf("the second dpkg -i did not keep the device:\n%s", out)
	}
	if n := e.CountDevices(); n != before+1 {
		t.Fatalf("devices after the second install: %d, want still %d", n, before+1)
	}
	if again, err := (state.Dir{Path: pkgAgentState}).LoadConfig(); err != nil || again.DeviceID != cfg.DeviceID {
		t.Fatalf("identity after the second install: %+v %v, want device %s", again, err, cfg.DeviceID)
	}

	// A machine not yet enrolled, and a package whose token expired.
	agent.Process.Kill()
	agent.Wait()
	uninstallAgentPackage(t, dpkg)
	if wait := time.Until(expiredAt); wait > 0 {
		time.Sleep(wait + time.Second)
	}
	out, err = dpkgRun(t, dpkg, "-i", expired)
	if err == nil {
		t.Fatalf("dpkg -i of a package with an expired token succeeded:\n%s", out)
	}
	t.Logf("dpkg -i of the package whose token expired:\n%s", out)
	if !strings.Contains(out, "enrollment token expired") || !strings.Contains(out, "new agent package") {
		t.Fatalf("dpkg -i refused, but without saying the token expired:\n%s", out)
	}
	if n := e.CountDevices(); n != before+1 {
		t.Fatalf("devices after the refused install: %d, want %d", n, before+1)
	}
}

// apiAgentPackage builds a one-minute, one-use package through the API
// and returns its path and its token's expiry.
func apiAgentPackage(t *testing.T, e *testenv.Env, key string) (string, time.Time) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"os": "linux", "arch": runtime.GOARCH, "format": "deb", "token_uses": 1, "ttl": "1m"})
	req, _ := http.NewRequest("POST", e.Server.ConsoleURL()+"/api/v1/agent-packages", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Content-Type") != "application/vnd.debian.binary-package" ||
		!strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment; filename=") {
		t.Fatalf("POST /api/v1/agent-packages: %d %v %.300s", resp.StatusCode, resp.Header, b)
	}
	exp, err := time.Parse(time.RFC3339, resp.Header.Get("X-Cordon-Token-Expires-At"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "expiring.deb")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, exp
}

// dpkgRun runs dpkg under the lock shared with the other package tests.
func dpkgRun(t *testing.T, dpkg string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	l, err := filelock.Wait(ctx, dpkgLock)
	if err != nil {
		t.Fatalf("dpkg lock %s: %v", dpkgLock, err)
	}
	defer l.Unlock()
	cmd := exec.CommandContext(ctx, dpkg, args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func dpkgInstall(t *testing.T, dpkg, deb string) string {
	t.Helper()
	out, err := dpkgRun(t, dpkg, "-i", deb)
	if err != nil {
		t.Fatalf("dpkg -i %s: %v\n%s", filepath.Base(deb), err, out)
	}
	return out
}

// uninstallAgentPackage purges the package and what the agent made, so
// the machine is as before; it runs again at cleanup, on failure too.
func uninstallAgentPackage(t *testing.T, dpkg string) {
	if out, err := dpkgRun(t, dpkg, "--purge", "cordon-agent"); err != nil {
		t.Logf("dpkg --purge cordon-agent: %v\n%s", err, out)
	}
	for _, p := range []string{pkgAgentState, agentpkg.EnrollFilePath} {
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove %s: %v", p, err)
		}
	}
	os.Remove(filepath.Dir(agentpkg.EnrollFilePath)) // only when empty
}
