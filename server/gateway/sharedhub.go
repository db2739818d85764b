package gateway

import "context"

// Hub is the registry of live connections, made before the gateway so
// that the services the gateway calls (the command queue, revocation,
// compliance) can write to a device without a pointer back to a gateway
// that does not exist yet. Until a gateway registers a connection in it,
// every write finds no device and reports false. Writing to devices is
// the hub's; the Gateway only accepts and serves connections.
type Hub struct{ h *hub }

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
func (h *Hub) Send(deviceID string, frame []byte) bool {
	c := h.h.get(deviceID)
	if c == nil || !c.accepts(frameType(frame)) {
		return false
	}
	return c.write(frame) == nil
}

// SendState tells the device's agent, when connected and when it takes
// device_state, where it stands.
func (h *Hub) SendState(ctx context.Context, deviceID string) {
	if c := h.h.get(deviceID); c != nil && c.g.incidents != nil {
		ctx, cancel := context.WithTimeout(ctx, c.g.frameTimeout)
		defer cancel()
		c.sendState(ctx)
	}
}

// Disconnect closes the device's connection, if any, with the given code.
func (h *Hub) Disconnect(deviceID string, code int, reason string) {
	if c := h.h.get(deviceID); c != nil {
		c.close(code, reason)
	}
}

// Connected reports whether the device has a live connection.
func (h *Hub) Connected(deviceID string) bool { return h.h.get(deviceID) != nil }

// Count is the number of live connections.
func (h *Hub) Count() int { return h.h.count() }
