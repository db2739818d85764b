package agent

// The agent's side of update commands: fetch the build the signed
// command names over the mutual-TLS channel, check it, put it in place
// of the executable, leave the marker and the watchdog, and restart
// (agent/selfupdate does the file and process work). The command's
// answer comes from whichever build runs next: the new one once it has
// connected (done), or the old one the watchdog restored (failed, with
// the reason).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/cordon-mdm/cordon/agent/selfupdate"
	"github.com/cordon-mdm/cordon/protocol"
)

// ErrRestart ends Run after an update put a new build in place: the
// caller cleans up and calls selfupdate.Restart.
var ErrRestart = errors.New("restarting into the updated agent build")

// updater is how this agent replaces itself (WithSelfUpdate).
type updater struct {
	exe    string
	args   []string
	stderr *os.File
}

// WithSelfUpdate lets the agent run update commands by replacing exe
// (its own executable) and restarting with args; the watchdog logs to
// stderr. Without it the agent announces no agent_updates and refuses
// update commands: an agent embedded in another program (tests, the
// simulator) must never replace that program's binary.
func WithSelfUpdate(exe string, args []string, stderr *os.File) Option {
	return func(a *Agent) { a.updater = &updater{exe: exe, args: slices.Clone(args), stderr: stderr} }
}

// RestartExe is the executable and args to restart into after Run
// answered ErrRestart.
func (a *Agent) RestartExe() (string, []string) { return a.updater.exe, a.updater.args }

// update runs an update command off the session goroutine. Refusals
// (no self-update, wrong platform, download error, hash mismatch) are
// answered at once, and the agent keeps running its current binary.
func (s *session) update(ctx context.Context, c protocol.Command) {
	a := s.a
	fail := func(msg string) {
		a.log.Warn("update refused", "command", c.ID, "reason", msg)
		frame := s.resultFrame(protocol.CommandResult{Ref: c.ID, Status: protocol.ResultFailed, Message: msg,
			Detail: map[string]string{"version": a.version, "to_version": c.Update.Version}})
		a.seen.finish(c.ID, frame)
		if frame != nil {
			s.queue(ctx, frame)
		}
	}
	if a.updater == nil {
		fail("this agent does not run updates (not started as the cordon-agent binary)")
		return
	}
	p := c.Update
	want := selfupdate.Want{OS: p.OS, Arch: p.Arch, Size: p.Size, SHA256: p.SHA256}
	if err := want.CheckPlatform(); err != nil {
		fail(err.Error())
		return
	}
	if err := a.fetchAndStage(ctx, p, want); err != nil {
		fail(err.Error())
		return
	}
	m := &selfupdate.Marker{CommandID: c.ID, From: a.version, To: p.Version, SHA256: p.SHA256,
		Deadline: time.Now().Add(p.Deadline()).UTC(), Timeout: p.Deadline().String(), PID: os.Getpid(),
		Args: a.updater.args, Exe: a.updater.exe, Service: selfupdate.ServiceName() != "", State: selfupdate.Pending}
	if err := selfupdate.WriteMarker(a.dir.Path, m); err != nil {
		a.rollbackNow(c, fmt.Sprintf("update marker not written: %v", err), fail)
		return
	}
	if err := selfupdate.StartWatchdog(a.updater.exe, a.dir.Path, a.updater.stderr); err != nil {
		a.rollbackNow(c, err.Error(), fail)
		return
	}
	a.log.Info("update staged; restarting into the new build", "command", c.ID, "from", a.version, "to", p.Version,
		"deadline", m.Deadline)
	a.restarting.Store(true)
	a.wipeMu.Lock()
	stop := a.stopRun
	a.wipeMu.Unlock()
	if stop != nil {
		stop()
	}
}

// rollbackNow undoes a staged build when the restart cannot be made
// safe (no marker, no watchdog): the old build goes back before anyone
// runs the new one.
func (a *Agent) rollbackNow(c protocol.Command, reason string, fail func(string)) {
	selfupdate.RemoveMarker(a.dir.Path)
	if err := selfupdate.Restore(a.updater.exe); err != nil {
		reason += "; restoring the previous build failed: " + err.Error()
	}
	fail("update not applied: " + reason)
}

// fetchAndStage downloads the build from the gateway with the device's
// certificate and hands it to selfupdate.Stage, which checks it.
func (a *Agent) fetchAndStage(ctx context.Context, p *protocol.UpdateParams, want selfupdate.Want) error {
	cfg, u, err := a.gatewayTLS()
	if err != nil {
		return err
	}
	u.Scheme, u.Path, u.RawQuery = "https", p.Path, ""
	client := &http.Client{Timeout: 10 * time.Minute, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: false}}
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("download error: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download error: the server answered %s", resp.Status)
	}
	return selfupdate.Stage(a.updater.exe, resp.Body, want)
}

// resolveUpdate runs once a session is established: an update marker
// left by the previous build is answered through the durable result
// path. The new build marks it connected and reports done; the old build
// the watchdog restored reports failed with the watchdog's reason.
func (s *session) resolveUpdate() {
	a := s.a
	if a.updater == nil {
		return
	}
	var result *protocol.CommandResult
	m, err := selfupdate.Update(s.ctx, a.dir.Path, func(m *selfupdate.Marker) bool {
		if m == nil {
			return false
		}
		detail := map[string]string{"version": a.version, "from_version": m.From, "to_version": m.To, "sha256": m.SHA256}
		switch {
		case m.State == selfupdate.Pending && a.version == m.To, m.State == selfupdate.Connected:
			result = &protocol.CommandResult{Ref: m.CommandID, Status: protocol.ResultDone,
				Message: "updated to " + a.version, Detail: detail}
			m.State = selfupdate.Connected
			return true
		case m.State == selfupdate.Pending:
			// Not the build the command named (a release labelled with
			// another version than it reports): it runs, but the update
			// did not do what was asked.
			result = &protocol.CommandResult{Ref: m.CommandID, Status: protocol.ResultFailed,
				Message: fmt.Sprintf("the new build reports version %s, not %s", a.version, m.To), Detail: detail}
			m.State = selfupdate.Connected
			return true
		case m.State == selfupdate.RolledBack:
			detail["rolled_back"] = "true"
			result = &protocol.CommandResult{Ref: m.CommandID, Status: protocol.ResultFailed,
				Message: "rolled back to " + a.version + ": " + m.Reason, Detail: detail}
		}
		return false
	})
	if err != nil {
		a.log.Error("update marker", "err", err)
		return
	}
	if result == nil {
		return
	}
	frame := s.resultFrame(*result)
	if frame == nil {
		return // not spooled: the marker stays, and the next session answers
	}
	a.seen.finish(result.Ref, frame)
	selfupdate.RemoveMarker(a.dir.Path)
	a.log.Info("update answered", "command", m.CommandID, "status", result.Status, "message", result.Message)
	if err := s.writeRaw(frame); err == nil {
		a.sent(resultID(frame))
	}
}
