package protocol

import (
	"fmt"
	"time"
)

// TypeReconnectHint (server → agent) says how to come back after losing
// this server: it is sent after the hello is acknowledged and again when
// the number of connected agents has changed much, so that an agent
// holds a fresh one when the server dies without a word (kill -9).
const TypeReconnectHint = "reconnect_hint"

// CapReconnect is announced by agents that honour reconnect_hint.
const CapReconnect = "reconnect_hint"

// MaxReconnectSpread bounds the spread a server may ask for: an agent
// out of touch for longer than this is out of touch for too long,
// whatever the fleet's size.
const MaxReconnectSpread = time.Minute

// ReconnectHint spreads a fleet's return over a window proportional to
// its size: SpreadMS is about the connected agents divided by the
// handshakes per second the server can take, so that every agent,
// drawing its first retry uniformly from [0, SpreadMS), arrives at a rate
// the server completes instead of all at once against the handshake
// timeout. The same window is what an agent waits (drawn afresh) when
// the server turns it away before the handshake completes (admission
// control), since the fleet is still arriving then.
type ReconnectHint struct {
	SpreadMS int64 `json:"spread_ms"`
}

// Check validates a ReconnectHint.
func (h *ReconnectHint) Check() error {
	if h.SpreadMS < 0 || h.SpreadMS > MaxReconnectSpread.Milliseconds() {
		return fmt.Errorf("spread_ms %d outside [0, %d]", h.SpreadMS, MaxReconnectSpread.Milliseconds())
	}
	return nil
}

// Spread is the window as a duration.
func (h ReconnectHint) Spread() time.Duration { return time.Duration(h.SpreadMS) * time.Millisecond }
