package agent

// The agent's side of the server's signed command frames: verify each one
// (signature, addressee, expiry), run it at most once (the seen log),
// hand it to the platform's actions.Executor, and answer; and, for a
// wipe, destroy the identity once the server has the answer.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/internal/atomicfile"
	"github.com/cordon-mdm/cordon/protocol"
)

// ErrWiped ends Run after a remote wipe destroyed the agent's identity.
var ErrWiped = errors.New("this device was wiped by remote command; its enrollment is gone")

// WipeConfigFile, in the state dir, names the data volumes and CJI paths
// a wipe erases beyond the system volume, and whether it powers off.
const WipeConfigFile = "wipe.json"

// seenFile records every command the agent accepted, until it expires,
// so a redelivered command is answered again but never run twice.
const seenFile = "commands.json"

type seenCommand struct {
	NotAfter time.Time `json:"not_after"`
	// Result is the answer frame once the command finished; empty while
	// it runs (or if the agent died while it ran).
	Result []byte `json:"result,omitempty"`
}

// seenLog is the persisted set of accepted commands.
type seenLog struct {
	mu   sync.Mutex
	path string
	m    map[string]seenCommand
	// running is what this process is executing now. A command recorded
	// without a result and not running here was cut short by a crash.
	running map[string]bool
}

func loadSeen(dir string) (*seenLog, error) {
	l := &seenLog{path: filepath.Join(dir, seenFile), m: map[string]seenCommand{}, running: map[string]bool{}}
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &l.m); err != nil {
		return nil, fmt.Errorf("%s: %w", l.path, err)
	}
	return l, nil
}

// claim records id before it runs; false means it was seen before, with
// what was recorded and whether it is still running.
func (l *seenLog) claim(id string, notAfter, now time.Time) (prev seenCommand, fresh, running bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prev, ok := l.m[id]; ok {
		return prev, false, l.running[id], nil
	}
	for k, v := range l.m {
		if now.After(v.NotAfter) {
			delete(l.m, k) // expired: the agent refuses it on its own now
		}
	}
	l.m[id] = seenCommand{NotAfter: notAfter}
	l.running[id] = true
	return seenCommand{}, true, true, l.save()
}

func (l *seenLog) finish(id string, result []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.running, id)
	c := l.m[id]
	c.Result = result
	l.m[id] = c
	return l.save()
}

func (l *seenLog) save() error {
	b, err := json.Marshal(l.m)
	if err != nil {
		return err
	}
	return atomicfile.Write(l.path, b, 0o600)
}

// command handles a command frame: verify, run at most once, answer.
// Running happens off the session goroutine (a lock waits for the lock
// state, a wipe erases disks); the answer is spooled like a report.
func (s *session) command(ctx context.Context, env protocol.Envelope) {
	a := s.a
	var signed protocol.SignedCommand
	if err := protocol.DecodeBody(env, &signed); err != nil {
		s.answer(ctx, env.ID, protocol.ResultFailed, "refused: "+err.Error(), nil)
		return
	}
	c, err := a.verify(signed, time.Now())
	if err != nil {
		ref := c.ID
		if ref == "" {
			ref = env.ID
		}
		a.log.Warn("command refused", "command", ref, "err", err)
		s.answer(ctx, ref, protocol.ResultFailed, "refused: "+err.Error(), nil)
		return
	}
	prev, fresh, running, err := a.seen.claim(c.ID, c.NotAfter, time.Now())
	if err != nil {
		a.log.Error("record command", "command", c.ID, "err", err)
		return // not recorded, so not run; the server will send it again
	}
	if !fresh && running {
		return // delivered again while it runs (a hello crossed the push): its answer is coming
	}
	if !fresh {
		if prev.Result != nil {
			// The first answer may have been lost: send the very same one.
			if err := a.spool.Put(resultID(prev.Result), prev.Result); err == nil {
				s.results <- prev.Result
			}
			return
		}
		s.answer(ctx, c.ID, protocol.ResultFailed, "not run again: the agent stopped while running it", nil)
		return
	}
	a.log.Info("running command", "command", c.ID, "kind", c.Kind)
	if c.Kind == protocol.CommandUpdate {
		go s.update(ctx, c)
		return
	}
	go func() {
		out := a.execute(ctx, c)
		status := protocol.ResultFailed
		if out.Done {
			status = protocol.ResultDone
		}
		var rec *protocol.WipeReceipt
		if c.Kind == protocol.CommandWipe && out.Receipt != nil {
			if out.Detail == nil {
				out.Detail = map[string]string{}
			}
			rec = a.signReceipt(c, out.Receipt, out.Done, out.Detail)
		}
		frame := s.resultFrame(protocol.CommandResult{Ref: c.ID, Status: status, Message: out.Message, Detail: out.Detail, Receipt: rec})
		a.seen.finish(c.ID, frame)
		if frame == nil {
			return
		}
		wiped := c.Kind == protocol.CommandWipe && out.Done
		if wiped {
			a.expectWipeAck(resultID(frame))
		}
		s.queue(ctx, frame)
		if wiped {
			a.finishWipe()
		}
	}()
}

// verify checks signature, addressee and expiry.
func (a *Agent) verify(signed protocol.SignedCommand, now time.Time) (protocol.Command, error) {
	pub, err := base64.StdEncoding.DecodeString(a.cfg.CommandSigningKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return protocol.Command{}, errors.New("no valid command key in the enrollment")
	}
	c, err := protocol.OpenCommand(ed25519.PublicKey(pub), signed)
	if err != nil {
		return protocol.Command{}, err
	}
	if c.DeviceID != a.cfg.DeviceID {
		return c, fmt.Errorf("addressed to device %s, not this one", c.DeviceID)
	}
	if now.After(c.NotAfter) {
		return c, fmt.Errorf("expired at %s", c.NotAfter.UTC().Format(time.RFC3339))
	}
	return c, nil
}

func (a *Agent) execute(ctx context.Context, c protocol.Command) actions.Outcome {
	switch c.Kind {
	case protocol.CommandLock:
		out := a.exec.Lock(ctx)
		if s, ok := a.collector.(interface{ Invalidate() }); ok {
			s.Invalidate()
		}
		a.ReportNow()
		return out
	case protocol.CommandBluetoothBlock:
		return a.exec.BluetoothBlock(ctx, c.Address)
	case protocol.CommandWipe:
		// A plan that could not read everything still erases what it
		// found (a stolen device should lose all it can), but the wipe
		// then reports failed, so the LASO knows it was partial.
		plan, err := a.exec.Plan(ctx)
		if err != nil && len(plan.LUKSDevices) == 0 && len(plan.CJIPaths) == 0 {
			return actions.Outcome{Message: "no wipe plan: " + err.Error()}
		}
		a.wipePowerOff = plan.PowerOff
		out := a.exec.Erase(ctx, plan)
		if err != nil {
			out.Done = false
			out.Message = strings.TrimSuffix("partial wipe: "+err.Error()+"; "+out.Message, "; ")
		}
		return out
	}
	return actions.Outcome{Message: "unknown kind " + c.Kind}
}

// answer spools a result frame and queues it for sending.
func (s *session) answer(ctx context.Context, ref, status, msg string, detail map[string]string) []byte {
	frame := s.result(ref, status, msg, detail)
	if frame != nil {
		s.queue(ctx, frame)
	}
	return frame
}

// result encodes an answer and spools it: from here the spool keeps it
// until the server acknowledges it, across reconnections and restarts.
func (s *session) result(ref, status, msg string, detail map[string]string) []byte {
	return s.resultFrame(protocol.CommandResult{Ref: ref, Status: status, Message: msg, Detail: detail})
}

func (s *session) resultFrame(r protocol.CommandResult) []byte {
	a := s.a
	frame, err := protocol.Encode(protocol.TypeCommandResult, uuid.NewString(), time.Now(), r)
	if err != nil {
		a.log.Error("encode command result", "err", err)
		return nil
	}
	if err := a.spool.Put(resultID(frame), frame); err != nil {
		a.log.Error("spool command result", "err", err)
		return nil
	}
	return frame
}

// queue hands a spooled frame to the session for writing; if the
// connection is gone, the next one sends it from the spool.
func (s *session) queue(ctx context.Context, frame []byte) {
	select {
	case s.results <- frame:
	case <-ctx.Done():
	}
}

// expectWipeAck notes the wipe answer whose acknowledgement releases the
// destruction of the identity.
func (a *Agent) expectWipeAck(ref string) {
	a.wipeMu.Lock()
	defer a.wipeMu.Unlock()
	a.wipeRef, a.wipeAcked = ref, make(chan struct{})
}

// acked is told of every acknowledgement.
func (a *Agent) acked(ref string) {
	a.wipeMu.Lock()
	defer a.wipeMu.Unlock()
	if a.wipeRef != "" && ref == a.wipeRef {
		close(a.wipeAcked)
		a.wipeRef = ""
	}
}

// finishWipe waits for the server to have the wipe's answer, then takes
// steps 3 and 4: the identity goes (so nothing on this disk can act as the
// device again) and the machine powers off when configured. A server that
// never acknowledges does not keep the identity alive: after a minute it
// goes anyway, and the server learns of the wipe from the revocation it
// can no longer be refused.
func (a *Agent) finishWipe() {
	a.wipeMu.Lock()
	acked := a.wipeAcked
	a.wipeMu.Unlock()
	select {
	case <-acked:
	case <-time.After(time.Minute):
		a.log.Warn("the server did not acknowledge the wipe's answer within a minute; destroying the identity anyway")
	}
	if err := a.destroyIdentity(); err != nil {
		a.log.Error("destroy identity", "err", err)
	}
	a.wiped.Store(true)
	if a.wipePowerOff {
		powerOff(context.Background(), a.log)
	}
	a.wipeMu.Lock()
	stop := a.stopRun
	a.wipeMu.Unlock()
	if stop != nil {
		stop()
	}
}

// resultID is a result frame's envelope id, under which it is spooled.
func resultID(frame []byte) string {
	env, err := protocol.Decode(frame)
	if err != nil {
		return ""
	}
	return env.ID
}

// destroyIdentity is the wipe's step 3: the key and the enrollment go, so
// nothing on this disk can act as the device again. Power-off, step 4,
// follows when configured.
func (a *Agent) destroyIdentity() error {
	// A TPM key exists only as blobs in the state dir (no handle of it
	// outlives an operation): deleting them means the TPM can never load
	// it again, and the certificate can never be used.
	errs := []error{a.dir.DestroyKeys()}
	for _, f := range []string{"agent.json", "cert.pem", seenFile} {
		if err := os.Remove(filepath.Join(a.dir.Path, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	a.log.Warn("device identity destroyed after remote wipe", "device_id", a.cfg.DeviceID)
	return errors.Join(errs...)
}

// powerOff is the wipe's last step. It runs after the identity is gone,
// so a failure here leaves an erased device that cannot reconnect.
func powerOff(ctx context.Context, log *slog.Logger) {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.CommandContext(ctx, "shutdown", "/s", "/t", "0")
	default:
		cmd = exec.CommandContext(ctx, "shutdown", "-h", "now")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Error("power-off after wipe failed", "err", err, "output", string(out))
	}
}
