package gateway

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// relayRecorder stands in for the other server processes.
type relayRecorder struct {
	mu   sync.Mutex
	asks []string
}

func (r *relayRecorder) Ask(kind, deviceID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asks = append(r.asks, kind+" "+deviceID)
}

func (r *relayRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asks)
}

func TestTheHubAsksTheOtherProcessesWhatItCannotDoHere(t *testing.T) {
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au, WithIncidents(&fakeIncidents{}))
	hub, relay := hubOf(g), &relayRecorder{}
	hub.SetRelay(relay)
	const other = "elsewhere"
	cmd, err := protocol.Encode(protocol.TypeCommand, "c1", time.Now(), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	state, _ := protocol.Encode(protocol.TypeDeviceState, "s1", time.Now(), protocol.DeviceState{})
	if hub.Send(other, cmd) || hub.Send(other, state) {
		t.Fatal("a frame for a device not connected here was written")
	}
	hub.SendState(t.Context(), other)
	hub.Disconnect(other, protocol.CloseReplaced, "replaced")
	hub.Disconnect(other, protocol.CloseRevoked, "certificate revoked")
	// Only a command is asked for, not any frame; a revocation whatever
	// the code says, and nothing else that closes.
	want := []string{AskCommands + " " + other, AskState + " " + other, AskRevoked + " " + other}
	if got := relay.got(); !slices.Equal(got, want) {
		t.Fatalf("asked %q, want %q", got, want)
	}
	// A connection registered here is announced, so a stale one to the
	// same device elsewhere is dropped there.
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	p.next() // device_state
	if got := relay.got(); got[len(got)-1] != AskConnected+" "+testDevice {
		t.Fatalf("asked %q after a connect", got)
	}
	// Held here: nothing is asked for it.
	n := len(relay.got())
	hub.SendState(t.Context(), testDevice)
	p.next()
	if got := relay.got(); len(got) != n {
		t.Fatalf("asked %q for a device held here", got[n:])
	}
}

func TestAskedDoesHereWhatAnotherProcessAsked(t *testing.T) {
	st, au, cmds := newFakeStore(), &fakeAuditor{}, &fakeCommands{}
	st.devices[testDevice] = &store.Device{ID: testDevice, Status: "active"}
	g := newGateway(t, st, au, WithCommands(cmds), WithIncidents(&fakeIncidents{}))
	hub := hubOf(g)
	hub.SetRelay(&relayRecorder{})
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	p.next() // device_state
	waitFor(t, "Ready after the hello", func() bool { return cmds.readyCount() == 1 })

	hub.Asked(t.Context(), AskCommands, testDevice)
	if cmds.readyCount() != 2 {
		t.Fatalf("Ready ran %d times, want 2 (the hello, the ask)", cmds.readyCount())
	}
	hub.Asked(t.Context(), AskState, testDevice)
	if env := p.next(); env.Type != protocol.TypeDeviceState {
		t.Fatalf("after a state ask: %s", env.Type)
	}
	// About a device not held here, or a kind it does not know: nothing.
	hub.Asked(t.Context(), AskCommands, "elsewhere")
	hub.Asked(t.Context(), "wipe_everything", testDevice)
	if cmds.readyCount() != 2 {
		t.Fatal("Ready ran for an ask about another device")
	}
	// A revocation notice is checked against the store: the device is
	// not revoked, so it stays connected.
	hub.Resync(t.Context())
	hub.Asked(t.Context(), AskRevoked, testDevice)
	if env := p.next(); env.Type != protocol.TypeDeviceState || cmds.readyCount() != 3 {
		t.Fatalf("resync sent %s, Ready %d times", env.Type, cmds.readyCount())
	}
	p.none(100 * time.Millisecond)
	if !hub.Connected(testDevice) {
		t.Fatal("an unrevoked device was dropped on a revocation notice")
	}
	st.mu.Lock()
	st.devices[testDevice].Status = store.StatusRevoked
	st.mu.Unlock()
	hub.Asked(t.Context(), AskRevoked, testDevice)
	wantClose(t, p, protocol.CloseRevoked)
	waitFor(t, "the revoked device gone", func() bool { return !hub.Connected(testDevice) })
}

func TestAConnectionElsewhereDropsTheStaleOneHereWithoutMarkingTheDeviceOffline(t *testing.T) {
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au, WithIncidents(&fakeIncidents{}))
	hub := hubOf(g)
	hub.SetRelay(&relayRecorder{})
	p := dial(t, g)
	hub.Asked(t.Context(), AskConnected, testDevice)
	wantClose(t, p, protocol.CloseReplaced)
	if hub.Connected(testDevice) {
		t.Fatal("the stale connection is still registered")
	}
	select {
	case <-st.disconnected:
		t.Fatal("the device, online elsewhere, was marked disconnected")
	case <-time.After(200 * time.Millisecond):
	}
}

func wantClose(t *testing.T, p *peer, code int) {
	t.Helper()
	select {
	case err := <-p.closed:
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("closed with %v, want code %d", err, code)
		}
	case env := <-p.frames:
		t.Fatalf("a %s frame instead of the close", env.Type)
	case <-time.After(5 * time.Second):
		t.Fatal("not closed")
	}
}
