package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

func TestHelloIsRecordedThenStateAndCommandsFollow(t *testing.T) {
	st, au, cmds := newFakeStore(), &fakeAuditor{}, &fakeCommands{}
	g := newGateway(t, st, au, WithCommands(cmds), WithIncidents(&fakeIncidents{}))
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	if env := p.next(); env.Type != protocol.TypeDeviceState {
		t.Fatalf("after the hello's ack: %s, want device_state", env.Type)
	}
	want := store.HelloFacts{Hostname: "probe", Platform: "linux/amd64", AgentVersion: "test",
		CapabilityVersion: int(protocol.CurrentCapabilityVersion), Capabilities: protocol.AgentCapabilities}
	got := st.helloFacts()
	if len(got) != 1 || got[0].Hostname != want.Hostname || got[0].Platform != want.Platform ||
		got[0].AgentVersion != want.AgentVersion || got[0].CapabilityVersion != want.CapabilityVersion ||
		!slices.Equal(got[0].Capabilities, want.Capabilities) {
		t.Fatalf("recorded %+v, want %+v", got, want)
	}
	waitFor(t, "Ready after the hello", func() bool { return cmds.readyCount() == 1 })
	if n := len(au.of(audit.DeviceConnected)); n != 1 {
		t.Fatalf("%d device.connected entries, want 1", n)
	}
}

func TestHelloOutOfBoundsIsRefusedAndNotRecorded(t *testing.T) {
	st := newFakeStore()
	g := newGateway(t, st, &fakeAuditor{})
	p := dial(t, g)
	for name, h := range map[string]protocol.Hello{
		"no platform":                 {Hostname: "probe"},
		"negative capability version": {Platform: "linux/amd64", CapabilityVersion: -1},
		"capability not a name":       {Platform: "linux/amd64", Capabilities: []string{"Commands, all"}},
	} {
		id := "h-" + strings.ReplaceAll(name, " ", "-")
		p.send(protocol.TypeHello, id, h)
		p.refusal(id, protocol.CodeMalformed)
	}
	if got := st.helloFacts(); len(got) != 0 {
		t.Fatalf("a refused hello was recorded: %+v", got)
	}
	if hubOf(g).Send(testDevice, commandFrame(t)) {
		t.Fatal("a command went to an agent whose hello was refused")
	}
}

func TestPostureAckedOnceStoredAndAgainWhenRepeated(t *testing.T) {
	st := newFakeStore()
	g := newGateway(t, st, &fakeAuditor{})
	p := dial(t, g)
	body := posture(time.Now())
	p.send(protocol.TypePosture, "r1", body)
	p.ack("r1")
	// Sent again (its ack was lost): acknowledged again, stored once.
	p.send(protocol.TypePosture, "r1", body)
	p.ack("r1")
	if n := st.savedReports(); n != 1 {
		t.Fatalf("%d reports stored, want 1", n)
	}
}

func TestFramesTheServerRefuses(t *testing.T) {
	g := newGateway(t, newFakeStore(), &fakeAuditor{})
	p := dial(t, g)
	now := time.Now().UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name, frame, ref, code string
	}{
		{"not JSON", "{posture", "", protocol.CodeMalformed},
		{"an unknown type", `{"v":1,"type":"launch","id":"u1","ts":"` + now + `"}`, "u1", protocol.CodeUnknownType},
		{"a type only the server sends", `{"v":1,"type":"device_state","id":"s1","ts":"` + now + `","body":{"compliance":"compliant"}}`, "s1", protocol.CodeRefused},
		{"another protocol version", `{"v":2,"type":"posture","id":"v2","ts":"` + now + `"}`, "v2", protocol.CodeVersion},
		{"a posture without a body", `{"v":1,"type":"posture","id":"p0","ts":"` + now + `"}`, "p0", protocol.CodeMalformed},
		{"a posture with an unknown field", `{"v":1,"type":"posture","id":"p1","ts":"` + now + `","body":{"os":{"platform":"x"},"evil":1}}`, "p1", protocol.CodeMalformed},
		{"a command result with no queue", `{"v":1,"type":"command_result","id":"c1","ts":"` + now + `","body":{"ref":"x","status":"done"}}`, "c1", protocol.CodeRefused},
	} {
		t.Run(c.name, func(t *testing.T) {
			p.t = t
			p.sendRaw([]byte(c.frame))
			p.refusal(c.ref, c.code)
		})
	}
}

func TestOversizeFrameEndsTheConnection(t *testing.T) {
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au)
	p := dial(t, g)
	p.sendRaw(make([]byte, protocol.MaxFrameBytes+1))
	select {
	case <-p.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived a frame over the read limit")
	}
	if err := <-st.disconnected; err != nil {
		t.Fatalf("MarkDisconnected ran on a dead context: %v", err)
	}
	waitFor(t, "device.disconnected", func() bool { return len(au.of(audit.DeviceDisconnected)) == 1 })
	if r := au.of(audit.DeviceDisconnected)[0].Details["reason"]; r != "frame over the read limit" {
		t.Fatalf("disconnect reason %q", r)
	}
}

func TestIncidentReportRefusedOrAcked(t *testing.T) {
	inc := &fakeIncidents{}
	g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithIncidents(inc))
	p := dial(t, g)
	r := protocol.IncidentReport{Kind: "total_loss", StartedAt: time.Now().Add(-time.Hour)}
	p.send(protocol.TypeIncidentReport, "i1", r)
	if a := p.ack("i1"); a.Incident != "inc-1" {
		t.Fatalf("ack %+v, want incident inc-1", a)
	}
	inc.refuse = fmt.Errorf("%w: not this device's owner's", ErrRefused)
	p.send(protocol.TypeIncidentReport, "i2", r)
	if e := p.refusal("i2", protocol.CodeRefused); !strings.Contains(e.Message, "owner") {
		t.Fatalf("refusal %q does not say why", e.Message)
	}
}

func TestCommandResultAckedBeforeItsAfterRuns(t *testing.T) {
	cmds := &fakeCommands{}
	g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithCommands(cmds))
	p := dial(t, g)
	afterRan := make(chan struct{})
	cmds.after = func() {
		// The ack is on the wire before after runs: the peer has it.
		select {
		case env := <-p.frames:
			p.frames <- env
		case <-time.After(5 * time.Second):
			t.Error("after ran before the ack was sent")
		}
		close(afterRan)
	}
	p.send(protocol.TypeCommandResult, "c1", protocol.CommandResult{Ref: "cmd-1", Status: protocol.ResultDone})
	<-afterRan
	p.ack("c1")
	cmds.mu.Lock()
	cmds.after, cmds.resultErr = nil, fmt.Errorf("complete: %w", store.ErrNotFound)
	cmds.mu.Unlock()
	p.send(protocol.TypeCommandResult, "c2", protocol.CommandResult{Ref: "cmd-2", Status: protocol.ResultDone})
	p.refusal("c2", protocol.CodeRefused)
	cmds.mu.Lock()
	cmds.resultErr = errors.New("database is down")
	cmds.mu.Unlock()
	p.send(protocol.TypeCommandResult, "c3", protocol.CommandResult{Ref: "cmd-3", Status: protocol.ResultDone})
	p.refusal("c3", protocol.CodeInternal)
}

// A frame the store did not commit is not acknowledged: the agent keeps
// it and sends it again.
func TestStoreErrorIsAnInternalErrorAndNoAck(t *testing.T) {
	st := newFakeStore()
	st.saveErr = errors.New("disk full")
	g := newGateway(t, st, &fakeAuditor{})
	p := dial(t, g)
	p.send(protocol.TypePosture, "r1", posture(time.Now()))
	p.refusal("r1", protocol.CodeInternal)
	p.none(100 * time.Millisecond)
}

func TestFrameDeadline(t *testing.T) {
	st := newFakeStore()
	const timeout = 200 * time.Millisecond
	lefts := make(chan time.Duration, 1)
	st.onSave = func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		lefts <- time.Until(d)
		<-ctx.Done() // a store that hangs
		return ctx.Err()
	}
	g := newGateway(t, st, &fakeAuditor{}, WithFrameTimeout(timeout))
	p := dial(t, g)
	start := time.Now()
	p.send(protocol.TypePosture, "r1", posture(time.Now()))
	p.refusal("r1", protocol.CodeInternal)
	if took := time.Since(start); took < timeout || took > timeout+2*time.Second {
		t.Fatalf("answered after %v, want about %v", took, timeout)
	}
	if left := <-lefts; left <= 0 || left > timeout {
		t.Fatalf("the store call had %v left, want at most %v", left, timeout)
	}
	// The connection is still good for the next frame.
	st.mu.Lock()
	st.onSave = nil
	st.mu.Unlock()
	p.send(protocol.TypePosture, "r2", posture(time.Now()))
	p.ack("r2")
}

// A store call in progress stops when its connection ends; marking the
// device offline still happens.
func TestConnectionEndCancelsItsCalls(t *testing.T) {
	for _, end := range []struct {
		name string
		do   func(t *testing.T, g *Gateway)
	}{
		{"revoked", func(_ *testing.T, g *Gateway) {
			hubOf(g).Disconnect(testDevice, protocol.CloseRevoked, "certificate revoked")
		}},
		{"replaced", func(t *testing.T, g *Gateway) { dial(t, g) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			st := newFakeStore()
			inCall, cancelled := make(chan struct{}), make(chan error, 1)
			st.onSave = func(ctx context.Context) error {
				close(inCall)
				select {
				case <-ctx.Done():
					cancelled <- ctx.Err()
				case <-time.After(5 * time.Second):
					cancelled <- errors.New("never cancelled")
				}
				return ctx.Err()
			}
			g := newGateway(t, st, &fakeAuditor{}, WithFrameTimeout(time.Minute))
			p := dial(t, g)
			connCtx := g.hub.get(testDevice).ctx
			p.send(protocol.TypePosture, "r1", posture(time.Now()))
			<-inCall
			st.mu.Lock()
			st.onSave = nil
			st.mu.Unlock()
			end.do(t, g)
			if err := <-cancelled; !errors.Is(err, context.Canceled) {
				t.Fatalf("the call in progress: %v, want cancelled", err)
			}
			if connCtx.Err() == nil {
				t.Fatal("the connection's context outlived it")
			}
			if end.name == "revoked" {
				if err := <-st.disconnected; err != nil {
					t.Fatalf("MarkDisconnected ran on a cancelled context: %v", err)
				}
			}
		})
	}
}

// A command's answer is stored even when the server drops the connection
// meanwhile: a revoked device would never send it again.
func TestCommandResultOutlivesItsConnection(t *testing.T) {
	cmds := &fakeCommands{}
	inCall, outcome := make(chan struct{}), make(chan error, 1)
	cmds.onResult = func(ctx context.Context) {
		close(inCall)
		time.Sleep(200 * time.Millisecond) // the revocation lands meanwhile
		_, hasDeadline := ctx.Deadline()
		if !hasDeadline {
			outcome <- errors.New("no deadline")
			return
		}
		outcome <- ctx.Err()
	}
	g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithCommands(cmds))
	p := dial(t, g)
	p.send(protocol.TypeCommandResult, "c1", protocol.CommandResult{Ref: "cmd-1", Status: protocol.ResultDone})
	<-inCall
	hubOf(g).Disconnect(testDevice, protocol.CloseRevoked, "certificate revoked")
	if err := <-outcome; err != nil {
		t.Fatalf("the answer's context: %v, want live with a deadline", err)
	}
	waitFor(t, "the answer stored", func() bool {
		cmds.mu.Lock()
		defer cmds.mu.Unlock()
		return len(cmds.results) == 1
	})
}

func TestPeerClosingCancelsTheConnectionContext(t *testing.T) {
	st := newFakeStore()
	g := newGateway(t, st, &fakeAuditor{})
	p := dial(t, g)
	connCtx := g.hub.get(testDevice).ctx
	p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	p.ws.Close()
	select {
	case <-connCtx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the connection's context was not cancelled when the agent left")
	}
	if err := <-st.disconnected; err != nil {
		t.Fatalf("MarkDisconnected: %v", err)
	}
}

// The process's id (WithServerID) goes with both ends of a connection:
// the store then leaves a device another process has taken online.
func TestConnectionMarksCarryTheServerID(t *testing.T) {
	st := newFakeStore()
	g := newGateway(t, st, &fakeAuditor{}, WithServerID("0123456789abcdef"))
	p := dial(t, g)
	p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
	p.ws.Close()
	if err := <-st.disconnected; err != nil {
		t.Fatalf("MarkDisconnected: %v", err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if want := []string{"connected:0123456789abcdef", "disconnected:0123456789abcdef"}; !slices.Equal(st.servers, want) {
		t.Fatalf("the store was told %q, want %q", st.servers, want)
	}
}

func commandFrame(t *testing.T) []byte {
	t.Helper()
	f, err := protocol.Encode(protocol.TypeCommand, "cmd-1", time.Now(), map[string]string{"id": "cmd-1"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The server sends an agent only the frame types its hello announced.
func TestPushesOnlyWhatTheAgentAnnounced(t *testing.T) {
	for _, c := range []struct {
		name     string
		v        protocol.CapabilityVersion
		caps     []string
		commands bool
		state    bool
	}{
		{"current", protocol.CurrentCapabilityVersion, protocol.AgentCapabilities, true, true},
		{"version 2, posture and renew", 2, []string{protocol.CapPosture, protocol.CapRenew}, false, false},
		{"version 3 with commands", 3, []string{protocol.CapPosture, protocol.CapCommands}, true, false},
		{"current, without incidents", protocol.CurrentCapabilityVersion, []string{protocol.CapCommands}, true, false},
		{"no version (an agent from before them)", 0, protocol.AgentCapabilities, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			logs := &logRecorder{}
			g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithIncidents(&fakeIncidents{}), WithLogger(slog.New(logs)))
			p := dial(t, g)
			if hubOf(g).Send(testDevice, commandFrame(t)) {
				t.Fatal("a command was pushed before the hello")
			}
			p.hello(c.v, c.caps...)
			if c.state {
				if env := p.next(); env.Type != protocol.TypeDeviceState {
					t.Fatalf("after hello: %s, want device_state", env.Type)
				}
			}
			hubOf(g).SendState(context.Background(), testDevice)
			for range 2 {
				if got := hubOf(g).Send(testDevice, commandFrame(t)); got != c.commands {
					t.Fatalf("command pushed: %v, want %v", got, c.commands)
				}
			}
			var want []string
			if c.state {
				want = append(want, protocol.TypeDeviceState)
			}
			if c.commands {
				want = append(want, protocol.TypeCommand, protocol.TypeCommand)
			}
			for _, typ := range want {
				if env := p.next(); env.Type != typ {
					t.Fatalf("got %s, want %s", env.Type, typ)
				}
			}
			p.none(100 * time.Millisecond)
			msg := "INFO agent did not announce this frame type: not sent (commands stay queued)"
			wantLogs := 0
			if !c.commands {
				wantLogs++
			}
			if !c.state {
				wantLogs++
			}
			if n := logs.count(msg); n != wantLogs {
				t.Fatalf("%d refusals logged, want %d (once per frame type)", n, wantLogs)
			}
		})
	}
}
