package gateway

import (
	"context"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Hub is the registry of live connections, made before the gateway so
// that the services the gateway calls (the command queue, revocation,
// compliance) can write to a device without a pointer back to a gateway
// that does not exist yet. Until a gateway registers a connection in it,
// every write finds no device and reports false. Writing to devices is
// the hub's; the Gateway only accepts and serves connections.
type Hub struct {
	h     *hub
	relay Relay // SetRelay; nil with one process
}

// NewHub returns an empty hub; give it to New with WithHub.
func NewHub() *Hub { return &Hub{h: newHub()} }

// WithHub makes the gateway register its connections in h.
func WithHub(h *Hub) Option { return func(g *Gateway) { g.hub = h.h } }

// Send writes a server frame to the device's live connection, reporting
// whether it was written (not whether the agent got it: only its answer
// proves that). Every server-initiated frame goes through here, so this
// is where a frame of a type the agent's hello did not announce
// (protocol.Accepts) is held back, and anything before the hello: a
// command stays queued, and goes out once an agent that runs commands
// says hello (Commands.Ready).
//
// A command for a device not connected here is asked of the other server
// processes (AskCommands): the one holding the device delivers it from
// the queue.
func (h *Hub) Send(deviceID string, frame []byte) bool {
	typ := frameType(frame)
	c := h.h.get(deviceID)
	if c == nil {
		if typ == protocol.TypeCommand {
			h.ask(AskCommands, deviceID)
		}
		return false
	}
	if !c.accepts(typ) {
		return false
	}
	return c.write(frame) == nil
}

// SendState tells the device's agent, when connected and when it takes
// device_state, where it stands.
// Not connected here, the device's state is asked of the other
// processes (AskState).
func (h *Hub) SendState(ctx context.Context, deviceID string) {
	if !h.sendState(ctx, deviceID) {
		h.ask(AskState, deviceID)
	}
}

func (h *Hub) sendState(ctx context.Context, deviceID string) bool {
	c := h.h.get(deviceID)
	if c == nil {
		return false
	}
	if c.g.incidents != nil {
		ctx, cancel := context.WithTimeout(ctx, c.g.frameTimeout)
		defer cancel()
		c.sendState(ctx)
	}
	return true
}

// Disconnect closes the device's connection, if any, with the given code.
// A revocation (protocol.CloseRevoked) is also asked of the other
// processes, whether or not the device is connected here: a connection
// elsewhere may be one this process has not heard has gone stale.
func (h *Hub) Disconnect(deviceID string, code int, reason string) {
	if c := h.h.get(deviceID); c != nil {
		c.close(code, reason)
	}
	if code == protocol.CloseRevoked {
		h.ask(AskRevoked, deviceID)
	}
}

// Connected reports whether the device has a live connection.
func (h *Hub) Connected(deviceID string) bool { return h.h.get(deviceID) != nil }

// Count is the number of live connections.
func (h *Hub) Count() int { return h.h.count() }

// What one server process asks the others, when several share one
// PostgreSQL (SetRelay), about a device it does not hold. Only the kind
// and the device's id travel: the process holding the device reads what
// to do from the database.
const (
	// AskCommands: deliver the device's pending commands from the queue.
	AskCommands = "commands"
	// AskState: send the device its device_state.
	AskState = "state"
	// AskRevoked: the device was revoked; drop its connection.
	AskRevoked = "revoked"
	// AskConnected: the device connected to the asking process; a
	// connection to it here is stale.
	AskConnected = "connected"
)

// Relay carries the hub's asks to the other server processes.
type Relay interface {
	Ask(kind, deviceID string)
}

// SetRelay makes the hub ask the other processes sharing the database
// for what it cannot do itself (Asked does it there). It is wiring, done
// before the gateway serves; without it (one process) nothing is asked.
func (h *Hub) SetRelay(r Relay) {
	h.relay = r
	h.h.registered = func(deviceID string) { r.Ask(AskConnected, deviceID) }
}

func (h *Hub) ask(kind, deviceID string) {
	if h.relay != nil {
		h.relay.Ask(kind, deviceID)
	}
}

// Asked does here what another process asked about a device, when the
// device is connected here; otherwise it does nothing (another process
// holds it, or nobody does and its next hello catches up). Nothing it
// does is asked on again.
func (h *Hub) Asked(ctx context.Context, kind, deviceID string) {
	c := h.h.get(deviceID)
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.g.frameTimeout)
	defer cancel()
	switch kind {
	case AskCommands:
		if c.g.commands != nil {
			c.g.commands.Ready(ctx, deviceID) // the hub's accepts holds them until the hello
		}
	case AskState:
		h.sendState(ctx, deviceID)
	case AskRevoked:
		// Not on the asker's word alone: anyone who may connect to the
		// database may NOTIFY, and an agent told it is revoked stops.
		dev, err := c.g.store.GetDevice(ctx, deviceID)
		if err != nil {
			c.g.log.Error("asked to drop a revoked device", "device_id", deviceID, "err", err)
			return
		}
		if dev.Status == store.StatusRevoked {
			c.close(protocol.CloseRevoked, "certificate revoked")
		}
	case AskConnected:
		// Out of the hub first, so that its end does not mark offline a
		// device that is online elsewhere.
		if h.h.unregister(c) {
			c.g.log.Info("agent connected to another server: stale connection here dropped", "device_id", deviceID)
			c.close(protocol.CloseReplaced, "replaced by a newer connection to another server")
		}
	}
}

// Resync does for every device connected here what missed asks would
// have asked: pending commands and device state. The relay calls it
// after it could not hear the other processes for a while.
func (h *Hub) Resync(ctx context.Context) {
	for _, c := range h.h.snapshot() {
		h.Asked(ctx, AskCommands, c.deviceID)
		h.Asked(ctx, AskState, c.deviceID)
	}
}
