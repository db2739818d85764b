package selfupdate

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"time"
)

// underSystemd: systemd is the init system (the test sd_booted uses).
func underSystemd() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// ServiceEnv names the service the agent runs as; the service unit sets
// it (systemd: Environment=CORDON_AGENT_SERVICE=cordon-agent). With it the
// agent exits to be restarted by its manager instead of re-executing
// itself, and a rollback asks the manager to restart it.
const ServiceEnv = "CORDON_AGENT_SERVICE"

// ExitRestart is the exit status under a service manager after an
// update: non-zero, so Restart=on-failure restarts it as well as
// Restart=always.
const ExitRestart = 75

// ServiceName is the service the agent runs as, "" in the foreground.
func ServiceName() string { return os.Getenv(ServiceEnv) }

// StartWatchdog starts the old build's copy (exe.prev) as the detached
// watchdog of the update in stateDir, in a session of its own so that
// the restart does not take it along; it logs to stderr.
func StartWatchdog(exe, stateDir string, stderr *os.File) error {
	cmd := exec.Command(exe+PrevSuffix, WatchdogCommand, "--state", stateDir)
	// Under systemd a new session is not enough: the unit's restart ends
	// every process of its cgroup (KillMode=control-group, kept so that
	// no helper of the agent outlives it), so the watchdog runs in a
	// transient unit of its own.
	if name := ServiceName(); name != "" && underSystemd() {
		cmd = exec.Command("systemd-run", "--unit", name+"-rollback-"+strconv.FormatInt(time.Now().Unix(), 10), "--collect", "--quiet",
			"--setenv", ServiceEnv+"="+name, "--", exe+PrevSuffix, WatchdogCommand, "--state", stateDir)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("start the update watchdog (systemd-run): %w: %s", err, out)
		}
		return nil
	}
	cmd.Stderr = stderr
	cmd.SysProcAttr = detached()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the update watchdog: %w", err)
	}
	return cmd.Process.Release()
}

// Restart restarts the agent into exe: in the foreground by executing
// it in place with args (same process id, so the watchdog knows whom to
// watch); under a service manager it returns, and the caller exits with
// ExitRestart.
func Restart(exe string, args []string) error {
	if ServiceName() != "" {
		return nil
	}
	return reexec(exe, args)
}

// RunWatchdog waits for the update in stateDir to reach its deadline.
// If the new build has not marked it connected by then, it restores the
// old build, marks the marker rolled back with the reason, ends the new
// build's process and restarts the old one: in the foreground by
// executing it with the original args (this process becomes the agent),
// under a service manager by asking the manager.
func RunWatchdog(ctx context.Context, stateDir string, log *slog.Logger) error {
	m, err := ReadMarker(stateDir)
	if err != nil || m == nil || m.State != Pending {
		return err
	}
	log = log.With("command", m.CommandID, "from", m.From, "to", m.To)
	log.Info("update watchdog waiting", "deadline", m.Deadline, "watchdog_pid", os.Getpid())
	for time.Now().Before(m.Deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(time.Second, time.Until(m.Deadline)+time.Millisecond)):
		}
		cur, err := ReadMarker(stateDir)
		if err != nil {
			return err
		}
		if cur == nil || cur.CommandID != m.CommandID || cur.State != Pending {
			log.Info("update watchdog done: the new build connected")
			return nil
		}
	}
	rolled := false
	m, err = Update(ctx, stateDir, func(cur *Marker) bool {
		if cur == nil || cur.CommandID != m.CommandID || cur.State != Pending {
			return false
		}
		cur.State, cur.Reason = RolledBack, fmt.Sprintf("new build did not connect within %s", cur.Timeout)
		rolled = true
		return true
	})
	if err != nil || !rolled {
		return err
	}
	log.Warn("rolling back: " + m.Reason)
	// The old build is back in place before the new one dies: a service
	// manager restarting at once starts the restored build.
	if err := Restore(m.Exe); err != nil {
		return fmt.Errorf("restore %s: %w", m.Exe+PrevSuffix, err)
	}
	if m.PID > 0 && m.PID != os.Getpid() {
		if p, err := os.FindProcess(m.PID); err == nil {
			p.Kill()
		}
	}
	if name := ServiceName(); name != "" {
		return restartService(ctx, name)
	}
	return reexec(m.Exe, m.Args)
}
