package gateway

import "sync"

// hub holds the one live connection per device.
type hub struct {
	mu    sync.Mutex
	conns map[string]*conn
	// registered, when set (Hub.SetRelay), hears of every connection
	// registered here, outside the lock.
	registered func(deviceID string)
}

func newHub() *hub { return &hub{conns: make(map[string]*conn)} }

// register makes c the device's connection and returns the one it replaced.
func (h *hub) register(c *conn) *conn {
	h.mu.Lock()
	old := h.conns[c.deviceID]
	h.conns[c.deviceID] = c
	h.mu.Unlock()
	if h.registered != nil {
		h.registered(c.deviceID)
	}
	return old
}

// unregister removes c if it is still the device's connection and says
// whether it was; a replaced connection must not mark the device offline.
func (h *hub) unregister(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[c.deviceID] != c {
		return false
	}
	delete(h.conns, c.deviceID)
	return true
}

func (h *hub) get(id string) *conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns[id]
}

func (h *hub) snapshot() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*conn, 0, len(h.conns))
	for _, c := range h.conns {
		out = append(out, c)
	}
	return out
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.conns)
}
