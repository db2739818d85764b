package gateway

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
)

// conn is one agent's live channel.
type conn struct {
	g        *Gateway
	ws       *websocket.Conn
	deviceID string
	remote   string
	// enrolledAt bounds how far back a report's time may go (trust).
	enrolledAt time.Time
	// ctx lives as long as the connection: derived from the gateway's,
	// cancelled when the read loop ends or the server closes the
	// connection (replaced, revoked, an unanswered ping), so that a
	// store call for a connection that is gone does not run on.
	ctx    context.Context
	cancel context.CancelFunc
	// skewAudited: this connection's first report from a wrong clock is
	// audited, the rest only flagged, so a device whose clock is off
	// cannot flood the trail (the repeated-skew finding says it persists).
	skewAudited bool
	writeMu     sync.Mutex

	// What the agent's hello announced. Until the hello, the server
	// pushes nothing: pending commands go out once it is acknowledged.
	capMu      sync.Mutex
	helloed    bool
	capVersion protocol.CapabilityVersion
	caps       []string
	withheld   map[string]bool // frame types not sent, each logged once
}

func newConn(g *Gateway, ws *websocket.Conn, deviceID, remote string, enrolledAt time.Time) *conn {
	c := &conn{g: g, ws: ws, deviceID: deviceID, remote: remote, enrolledAt: enrolledAt}
	c.ctx, c.cancel = context.WithCancel(g.ctx)
	return c
}

// frameContext is the context of one frame's store and service calls:
// the connection's, with the frame deadline.
func (c *conn) frameContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.ctx, c.g.frameTimeout)
}

func (c *conn) readLoop() {
	g := c.g
	defer g.wg.Done()
	defer c.cancel()
	defer c.ws.Close()
	c.ws.SetReadLimit(protocol.MaxFrameBytes)
	c.ws.SetReadDeadline(time.Now().Add(g.pongWait))
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(g.pongWait))
	})
	for {
		_, data, err := c.ws.ReadMessage()
		// The server's own time of receipt, the one time of a frame that
		// the device does not choose; handlers use it, not their own
		// clock reading. Microseconds: what PostgreSQL keeps, so both
		// backends answer alike.
		received := time.Now().UTC().Truncate(time.Microsecond)
		if err != nil {
			c.ended(err)
			return
		}
		c.ws.SetReadDeadline(received.Add(g.pongWait))
		// The frame is handled on a short-lived goroutine and waited for
		// (order is kept): database calls grow a stack to 8 KiB or more,
		// and a long-lived idle goroutine would keep that stack for the
		// connection's life.
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.handle(data, received)
		}()
		<-done
	}
}

func (c *conn) ended(err error) {
	g := c.g
	if !g.hub.unregister(c) || g.closing.Load() {
		return // replaced (the newer connection owns the state) or shutting down
	}
	// The connection is gone, and its context with it (or about to be);
	// recording that it went must not be cancelled along with it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), g.frameTimeout)
	defer cancel()
	reason := err.Error()
	if errors.Is(err, websocket.ErrReadLimit) {
		reason = "frame over the read limit"
	}
	at := time.Now().UTC()
	if err := g.commit.Commit(ctx, func(tx Tx) error {
		if err := tx.MarkDisconnected(ctx, c.deviceID, at, g.serverID); err != nil {
			return err
		}
		return g.audit.RecordTx(ctx, tx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.DeviceDisconnected,
			Target: "device:" + c.deviceID, Outcome: audit.Success, Details: map[string]string{"reason": reason}})
	}); err != nil {
		g.log.Error("mark disconnected", "device_id", c.deviceID, "err", err)
	}
	g.log.Info("agent disconnected", "device_id", c.deviceID, "reason", reason)
}

// announce keeps what the agent's hello said it understands.
func (c *conn) announce(v protocol.CapabilityVersion, caps []string) {
	c.capMu.Lock()
	defer c.capMu.Unlock()
	c.helloed, c.capVersion, c.caps = true, v, slices.Clone(caps)
}

// accepts reports whether the server may push a frame of type typ to this
// agent. A type the agent did not announce is logged once per connection
// and not sent; nothing else records it, a command simply stays queued.
func (c *conn) accepts(typ string) bool {
	c.capMu.Lock()
	defer c.capMu.Unlock()
	if !c.helloed {
		return false // its hello has not come yet; Ready delivers after it
	}
	if protocol.Accepts(c.capVersion, c.caps, typ) {
		return true
	}
	if !c.withheld[typ] {
		if c.withheld == nil {
			c.withheld = map[string]bool{}
		}
		c.withheld[typ] = true
		c.g.log.Info("agent did not announce this frame type: not sent (commands stay queued)", "device_id", c.deviceID,
			"type", typ, "capability_version", int(c.capVersion), "capabilities", c.caps)
	}
	return false
}

func (c *conn) internal(ref, what string, err error) {
	c.g.log.Error("agent frame failed", "device_id", c.deviceID, "type", what, "err", err)
	c.sendError(ref, protocol.CodeInternal, what+" could not be stored; send it again later")
}

func (c *conn) sendError(ref, code, msg string) {
	c.send(protocol.TypeError, protocol.Error{Ref: ref, Code: code, Message: msg})
}

func (c *conn) send(typ string, body any) {
	frame, err := protocol.Encode(typ, uuid.NewString(), time.Now(), body)
	if err != nil {
		c.g.log.Error("encode frame", "err", err)
		return
	}
	c.write(frame)
}

// write sends one frame; a failed write closes the connection, whose
// read loop then ends it.
func (c *conn) write(frame []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(c.g.writeTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, frame)
	if err != nil {
		c.drop()
	}
	return err
}

// close says why, then drops the connection.
func (c *conn) close(code int, reason string) {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.drop()
}

// drop ends the connection: its context is cancelled at once (a frame in
// hand stops waiting on the store), and the read loop, failing, cleans up.
func (c *conn) drop() {
	c.cancel()
	c.ws.Close()
}
