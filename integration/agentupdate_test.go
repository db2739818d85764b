package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/releases"
	"github.com/cordon-mdm/cordon/server/store"
)

// buildAgentVersion builds cmd/cordon-agent reporting version v.
func buildAgentVersion(t *testing.T, v string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "cordon-agent-"+v)
	cmd := exec.Command("go", "build", "-o", bin, "-ldflags", "-X github.com/cordon-mdm/cordon/internal/version.Version="+v,
		"github.com/cordon-mdm/cordon/cmd/cordon-agent")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build agent %s: %v\n%s", v, err, out)
	}
	return bin
}

// runningAgent is a cordon-agent process started in the foreground from
// its own copy of a build, as an agency would run it without a service
// manager.
type runningAgent struct {
	exe, log string
	dir      state.Dir
	cmd      *exec.Cmd
}

func startAgentBinary(t *testing.T, build string, dir state.Dir) *runningAgent {
	t.Helper()
	bindir := t.TempDir()
	exe := filepath.Join(bindir, "cordon-agent")
	copyFile(t, build, exe, 0o755)
	logPath := filepath.Join(bindir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command(exe, "run", "--state", dir.Path, "--keystore", "file", "--socket", filepath.Join(bindir, "agent.sock"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ra := &runningAgent{exe: exe, log: logPath, dir: dir, cmd: cmd}
	go cmd.Wait()
	t.Cleanup(func() {
		cmd.Process.Kill()
		// A rolled-back agent runs on as the watchdog's process.
		for _, pid := range ra.watchdogs() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("agent log:\n%s", b)
		}
	})
	return ra
}

var watchdogPID = regexp.MustCompile(`"watchdog_pid":(\d+)`)

func (ra *runningAgent) watchdogs() []int {
	b, _ := os.ReadFile(ra.log)
	var out []int
	for _, m := range watchdogPID.FindAllSubmatch(b, -1) {
		n, _ := strconv.Atoi(string(m[1]))
		out = append(out, n)
	}
	return out
}

func (ra *runningAgent) alive() bool { return ra.cmd.Process.Signal(syscall.Signal(0)) == nil }

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
}

func deviceID(t *testing.T, dir state.Dir) string {
	t.Helper()
	cfg, err := dir.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.DeviceID
}

// TestAgentUpdate is issue 20's acceptance point 3, on real agent
// binaries built with their versions: (a) an agent running from a copy
// of its build replaces itself with a newer one, reconnects and reports
// it; (b) a build whose stored file no longer matches its hash is
// refused and the agent runs on at its version; (c) a build that never
// connects is rolled back by itself at the deadline; (d) every step is
// in the audit trail.
func TestAgentUpdate(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("foreground re-exec is tested on Linux")
	}
	const deadline = 12 * time.Second
	e := testenv.New(t, "", server.WithAgentUpdateDeadline(deadline), server.WithSweepInterval(time.Second))
	admin, laso, auditor := e.APIKey("it-admin"), e.APIKey("laso"), e.APIKey("auditor")
	oldBuild, newBuild := buildAgentVersion(t, "1.0.0"), buildAgentVersion(t, "1.1.0")
	ctx := context.Background()
	goos, arch := runtime.GOOS, runtime.GOARCH
	add := func(path, ver string) *store.AgentRelease {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rel, err := e.Server.Releases.Add(ctx, releases.AddRequest{File: f, Version: ver, OS: goos, Arch: arch, Actor: "local:it", Source: "local"})
		if err != nil {
			t.Fatalf("add release %s: %v", ver, err)
		}
		return rel
	}
	rollout := func(key string, body map[string]any) (int, map[string]any) {
		var out map[string]any
		return e.Do("POST", "/api/v1/agent-rollouts", key, body, &out), out
	}
	device := func(id string) *store.Device {
		d, err := e.Server.Store.GetDevice(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	online := func(id, ver string) func() bool {
		return func() bool { d := device(id); return d.Online && d.AgentVersion == ver }
	}
	// updateOf waits for the device's update command to end and returns it.
	updateOf := func(id string, timeout time.Duration) store.Command {
		var c store.Command
		testenv.Eventually(t, timeout, "the update command of "+id+" to end", func() bool {
			cs, err := e.Server.Store.DeviceCommands(ctx, id, 10)
			if err != nil || len(cs) == 0 || cs[0].Kind != "update" {
				return false
			}
			c = cs[0]
			return c.Status == store.CommandDone || c.Status == store.CommandFailed
		})
		full, err := e.Server.Store.GetCommand(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		return *full
	}
	resultOf := func(c store.Command) (msg string, detail map[string]string) {
		var r struct {
			Message string
			Detail  map[string]string
		}
		json.Unmarshal([]byte(c.Result), &r)
		return r.Message, r.Detail
	}

	// Each case's device is in a group of its own, and each rollout is
	// for that group first: the newest rollout is the policy the sweep
	// applies to devices coming online, and must not reach the next
	// case's device.
	enrollIn := func(group string) (state.Dir, string) {
		if st := e.Do("PUT", "/api/v1/groups/"+group, admin, map[string]any{"profile": profiles.BaselineName}, nil); st != 200 && st != 201 {
			t.Fatalf("group %s: %d", group, st)
		}
		dir := e.MustEnroll()
		id := deviceID(t, dir)
		if st := e.Do("PUT", "/api/v1/devices/"+id+"/group", admin, map[string]any{"group": group}, nil); st != 200 {
			t.Fatalf("device group: %d", st)
		}
		return dir, id
	}

	// (a) A newer build replaces the running one.
	dirA, idA := enrollIn("pilot-a")
	a := startAgentBinary(t, oldBuild, dirA)
	testenv.Eventually(t, 30*time.Second, "agent A online at 1.0.0", online(idA, "1.0.0"))
	relNew := add(newBuild, "1.1.0")
	if st, out := rollout(auditor, map[string]any{"version": "1.1.0", "os": goos, "arch": arch, "group": "pilot-a"}); st != 403 {
		t.Fatalf("auditor created a rollout: %d %v", st, out)
	}
	if st, out := rollout(admin, map[string]any{"version": "1.1.0", "os": goos, "arch": arch, "group": "pilot-a"}); st != 201 {
		t.Fatalf("rollout 1.1.0: %d %v", st, out)
	}
	cA := updateOf(idA, 60*time.Second)
	if msg, detail := resultOf(cA); cA.Status != store.CommandDone || detail["version"] != "1.1.0" {
		t.Fatalf("update A: %s %q %v", cA.Status, msg, detail)
	}
	testenv.Eventually(t, 10*time.Second, "agent A online at 1.1.0", online(idA, "1.1.0"))
	if got, _ := os.ReadFile(a.exe); !bytes.Equal(got, fileBytes(t, newBuild)) {
		t.Fatal("agent A's executable is not the new build")
	}
	if got, _ := os.ReadFile(a.exe + ".prev"); !bytes.Equal(got, fileBytes(t, oldBuild)) {
		t.Fatal("agent A kept no .prev copy of the old build")
	}
	if !a.alive() {
		t.Fatal("agent A's process is gone: the foreground restart should exec in place")
	}
	// A downgrade is refused unless asked for, and then only by laso or it-admin.
	add(oldBuild, "1.0.0")
	if st, out := rollout(admin, map[string]any{"version": "1.0.0", "os": goos, "arch": arch, "group": "pilot-a"}); st != 409 {
		t.Fatalf("downgrade without asking: %d %v", st, out)
	}
	a.cmd.Process.Kill()
	testenv.Eventually(t, 10*time.Second, "agent A offline", func() bool { return !device(idA).Online })

	// (b) A stored file that no longer matches its hash is refused.
	corrupt := filepath.Join(t.TempDir(), "cordon-agent-1.2.0")
	copyFile(t, newBuild, corrupt, 0o755)
	f, _ := os.OpenFile(corrupt, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte("1.2.0")) // a distinct file, still a runnable build
	f.Close()
	relBad := add(corrupt, "1.2.0")
	stored := filepath.Join(e.Server.DataDir(), releases.Dir, relBad.SHA256)
	b := fileBytes(t, stored)
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(stored, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dirB, idB := enrollIn("pilot-b")
	agentB := startAgentBinary(t, oldBuild, dirB)
	testenv.Eventually(t, 30*time.Second, "agent B online at 1.0.0", online(idB, "1.0.0"))
	if st, out := rollout(laso, map[string]any{"version": "1.2.0", "os": goos, "arch": arch, "group": "pilot-b"}); st != 201 {
		t.Fatalf("rollout 1.2.0: %d %v", st, out)
	}
	cB := updateOf(idB, 60*time.Second)
	if msg, _ := resultOf(cB); cB.Status != store.CommandFailed || !strings.Contains(msg, "SHA-256 does not match") {
		t.Fatalf("corrupt update: %s %q", cB.Status, msg)
	}
	time.Sleep(2 * time.Second) // it would have restarted by now
	if !agentB.alive() || !online(idB, "1.0.0")() {
		t.Fatal("agent B did not keep running, connected at 1.0.0")
	}
	if got, _ := os.ReadFile(agentB.exe); !bytes.Equal(got, fileBytes(t, oldBuild)) {
		t.Fatal("agent B's executable changed")
	}
	agentB.cmd.Process.Kill()
	testenv.Eventually(t, 10*time.Second, "agent B offline", func() bool { return !device(idB).Online })

	// (c) A build that never connects is rolled back by itself.
	script := filepath.Join(t.TempDir(), "never-connects")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	relHang := add(script, "1.3.0")
	dirC, idC := enrollIn("pilot-c")
	agentC := startAgentBinary(t, oldBuild, dirC)
	testenv.Eventually(t, 30*time.Second, "agent C online at 1.0.0", online(idC, "1.0.0"))
	start := time.Now()
	if st, out := rollout(admin, map[string]any{"version": "1.3.0", "os": goos, "arch": arch, "group": "pilot-c", "percent": 100}); st != 201 {
		t.Fatalf("rollout 1.3.0: %d %v", st, out)
	}
	cC := updateOf(idC, deadline+60*time.Second)
	msg, detail := resultOf(cC)
	if cC.Status != store.CommandFailed || !strings.Contains(msg, fmt.Sprintf("new build did not connect within %s", deadline)) ||
		detail["rolled_back"] != "true" || detail["version"] != "1.0.0" {
		t.Fatalf("hanging update: %s %q %v", cC.Status, msg, detail)
	}
	if time.Since(start) < deadline {
		t.Fatalf("rolled back after %v, before the %v deadline", time.Since(start), deadline)
	}
	testenv.Eventually(t, 10*time.Second, "agent C online at 1.0.0 again", online(idC, "1.0.0"))
	if got, _ := os.ReadFile(agentC.exe); !bytes.Equal(got, fileBytes(t, oldBuild)) {
		t.Fatal("agent C's executable is not the old build again")
	}

	// (d) Every step is in the trail.
	has := func(action string, match func(testenv.AuditEntry) bool) {
		t.Helper()
		for _, en := range e.Audit(action) {
			if match(en) {
				return
			}
		}
		t.Errorf("no matching %s entry", action)
	}
	for _, rel := range []*store.AgentRelease{relNew, relBad, relHang} {
		has("agent_release.added", func(en testenv.AuditEntry) bool { return en.Details["sha256"] == rel.SHA256 })
	}
	has("agent_rollout.created", func(en testenv.AuditEntry) bool {
		return en.Details["version"] == "1.1.0" && en.Details["group"] == "pilot-a" && en.Details["role"] == "it-admin"
	})
	has("agent_rollout.refused", func(en testenv.AuditEntry) bool {
		return en.Details["version"] == "1.0.0" && strings.Contains(en.Details["reason"], "downgrade")
	})
	for _, c := range []store.Command{cA, cB, cC} {
		has("command.requested", func(en testenv.AuditEntry) bool {
			return en.Details["command"] == c.ID && en.Details["kind"] == "update" && en.Details["sha256"] != ""
		})
	}
	for _, id := range []string{idA, idB, idC} {
		has("agent_release.fetched", func(en testenv.AuditEntry) bool { return en.Actor == "device:"+id && en.Outcome == "success" })
	}
	has("command.completed", func(en testenv.AuditEntry) bool {
		return en.Details["command"] == cA.ID && en.Outcome == "success" && en.Details["agent.version"] == "1.1.0"
	})
	has("command.completed", func(en testenv.AuditEntry) bool {
		return en.Details["command"] == cB.ID && en.Outcome == "failure" && strings.Contains(en.Details["message"], "SHA-256 does not match")
	})
	has("command.completed", func(en testenv.AuditEntry) bool {
		return en.Details["command"] == cC.ID && en.Outcome == "failure" && en.Details["agent.rolled_back"] == "true" &&
			strings.Contains(en.Details["message"], "did not connect within")
	})

	// The version spread: the fleet's agents per os and version.
	var spread struct {
		Versions []struct {
			OS, Version string
			Devices     int
		}
		Rollouts []map[string]any
	}
	if st := e.Do("GET", "/api/v1/agent-rollouts", auditor, nil, &spread); st != 200 || len(spread.Rollouts) != 3 {
		t.Fatalf("rollouts: %d %+v", st, spread)
	}
	counts := map[string]int{}
	for _, v := range spread.Versions {
		counts[v.OS+" "+v.Version] = v.Devices
	}
	if counts[goos+" 1.1.0"] != 1 || counts[goos+" 1.0.0"] < 2 {
		t.Fatalf("version spread %+v", spread.Versions)
	}
	// The same spread on /metrics, where an operator alerts on it.
	for v, want := range map[string]int{"1.1.0": 1, "1.0.0": counts[goos+" 1.0.0"]} {
		name := regexp.QuoteMeta(`cordon_agent_devices{os="` + goos + `",version="` + v + `"}`)
		if got := metric(t, e, auditor, name); got != float64(want) {
			t.Errorf("/metrics %s = %v, want %d", name, got, want)
		}
	}
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
