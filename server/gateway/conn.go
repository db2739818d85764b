package gateway

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// conn is one agent's live channel.
type conn struct {
	g        *Gateway
	ws       *websocket.Conn
	deviceID string
	remote   string
	// enrolledAt bounds how far back a report's time may go (trust).
	enrolledAt time.Time
	// skewAudited: this connection's first report from a wrong clock is
	// audited, the rest only flagged, so a device whose clock is off
	// cannot flood the trail (the repeated-skew finding says it persists).
	skewAudited bool
	writeMu     sync.Mutex
}

func (c *conn) readLoop() {
	g := c.g
	defer g.wg.Done()
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
	if err := g.store.MarkDisconnected(g.ctx, c.deviceID, time.Now().UTC()); err != nil {
		g.log.Error("mark disconnected", "device_id", c.deviceID, "err", err)
	}
	reason := err.Error()
	if errors.Is(err, websocket.ErrReadLimit) {
		reason = "frame over the read limit"
	}
	g.audit.Record(g.ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.DeviceDisconnected,
		Target: "device:" + c.deviceID, Outcome: audit.Success, Details: map[string]string{"reason": reason}})
	g.log.Info("agent disconnected", "device_id", c.deviceID, "reason", reason)
}

func (c *conn) handle(data []byte, received time.Time) {
	env, err := protocol.Decode(data)
	if err != nil {
		c.sendError(env.ID, protocol.CodeFor(err), err.Error())
		return
	}
	switch env.Type {
	case protocol.TypeHello:
		var h protocol.Hello
		if err := protocol.DecodeBody(env, &h); err != nil {
			c.sendError(env.ID, protocol.CodeMalformed, err.Error())
			return
		}
		if err := c.g.store.UpdateHello(c.g.ctx, c.deviceID, h.Hostname, h.Platform, h.AgentVersion); err != nil {
			c.internal(env.ID, "hello", err)
			return
		}
		c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID})
		if c.g.incidents != nil {
			c.sendState(c.g.ctx)
		}
		if c.g.commands != nil {
			c.g.commands.Ready(c.g.ctx, c.deviceID)
		}
	case protocol.TypePosture:
		c.posture(env, received)
	case protocol.TypeCommandResult:
		c.commandResult(env)
	case protocol.TypeRenew:
		c.renew(env)
	case protocol.TypeIncidentReport:
		c.incidentReport(env, received)
	case protocol.TypeBluetoothRequest:
		c.bluetoothRequest(env)
	default:
		c.sendError(env.ID, protocol.CodeRefused, env.Type+" is not accepted from an agent")
	}
}

func (c *conn) posture(env protocol.Envelope, received time.Time) {
	var p protocol.Posture
	if err := protocol.DecodeBody(env, &p); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	collected := p.CollectedAt.UTC().Truncate(time.Microsecond)
	tr := trust(collected, received, c.enrolledAt)
	rep := &store.PostureReport{DeviceID: c.deviceID, ReportID: env.ID, ReceivedAt: received,
		CollectedAt: collected, TrustedAt: tr.At, ClockSkew: tr.Skewed, SkewSeconds: tr.SkewSeconds, Body: string(env.Body)}
	var lock *store.LockEvent
	if p.Lock != nil {
		// At and the clock flags are the report's (SavePosture sets them).
		lock = &store.LockEvent{DeviceID: c.deviceID, State: p.Lock.State, Source: p.Lock.Source}
	}
	dup, err := c.g.store.SavePosture(c.g.ctx, rep, lock)
	if err != nil {
		c.internal(env.ID, "posture", err)
		return
	}
	// Only now, committed, may the agent drop the report from its spool.
	// A report from a wrong clock is acknowledged like any other: it is
	// stored (at its receive time), and refusing it would only keep it
	// in the spool, to be sent again.
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID})
	if tr.Skewed && !dup {
		c.clockSkewed(env.ID, collected, received, tr.SkewSeconds)
	}
	if c.g.compliance != nil {
		if err := c.g.compliance.Evaluate(c.g.ctx, c.deviceID, p); err != nil {
			c.g.log.Error("compliance evaluation", "device_id", c.deviceID, "err", err)
		}
	}
}

// clockSkewed logs every report from a wrong clock and audits the first
// of each connection.
func (c *conn) clockSkewed(reportID string, deviceAt, received time.Time, skew int64) {
	g := c.g
	g.log.Warn("device clock is off; report kept at its receive time", "device_id", c.deviceID,
		"report", reportID, "device_time", deviceAt, "skew_seconds", skew)
	if c.skewAudited {
		return
	}
	c.skewAudited = true
	g.audit.Record(g.ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.DeviceClockSkew,
		Target: "device:" + c.deviceID, Outcome: audit.Denied, Details: map[string]string{
			"report": reportID, "device_time": timefmt.JSON(deviceAt),
			"received_at": timefmt.JSON(received), "skew_seconds": strconv.FormatInt(skew, 10),
			"enrolled_at": timefmt.JSON(c.enrolledAt)}})
}

func (c *conn) commandResult(env protocol.Envelope) {
	var r protocol.CommandResult
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.commands == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server runs no command queue")
		return
	}
	after, err := c.g.commands.Result(c.g.ctx, c.deviceID, c.remote, r)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.sendError(env.ID, protocol.CodeRefused, "no such command for this device")
			return
		}
		c.internal(env.ID, "command_result", err)
		return
	}
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID})
	if after != nil {
		after()
	}
}

func (c *conn) incidentReport(env protocol.Envelope, received time.Time) {
	var r protocol.IncidentReport
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.incidents == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server takes no incident reports")
		return
	}
	id, err := c.g.incidents.Report(c.g.ctx, c.deviceID, c.remote, env.ID, r, clockAhead(env.TS, received))
	switch {
	case errors.Is(err, ErrRefused):
		c.sendError(env.ID, protocol.CodeRefused, err.Error())
		return
	case err != nil:
		c.internal(env.ID, "incident_report", err)
		return
	}
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID, Incident: id})
}

func (c *conn) bluetoothRequest(env protocol.Envelope) {
	var r protocol.BluetoothRequest
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.compliance == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server takes no Bluetooth requests")
		return
	}
	id, err := c.g.compliance.AgentRequest(c.g.ctx, c.deviceID, c.remote, env.ID, r)
	switch {
	case errors.Is(err, ErrRefused):
		c.sendError(env.ID, protocol.CodeRefused, err.Error())
		return
	case err != nil:
		c.internal(env.ID, "bluetooth_request", err)
		return
	}
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID, Request: id})
}

func (c *conn) sendState(ctx context.Context) {
	st, err := c.g.incidents.State(ctx, c.deviceID)
	if err != nil {
		c.g.log.Error("device state", "device_id", c.deviceID, "err", err)
		return
	}
	c.send(protocol.TypeDeviceState, st)
}

func (c *conn) renew(env protocol.Envelope) {
	g := c.g
	var req protocol.Renew
	if err := protocol.DecodeBody(env, &req); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	fail := func(err error) {
		g.audit.Record(g.ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.CertRenewed,
			Target: "device:" + c.deviceID, Outcome: audit.Failure, Details: map[string]string{"reason": err.Error()}})
		c.sendError(env.ID, protocol.CodeRefused, err.Error())
	}
	csr, err := identity.ParseCSR(req.CSR)
	if err == nil {
		// A renewal names at most the device itself (the agent puts its id
		// in the CN); any other identity is refused, not rewritten.
		err = identity.CheckNoClaims(csr, c.deviceID)
	}
	if err != nil {
		fail(err)
		return
	}
	chain, err := g.signer.SignDevice(g.ctx, csr, c.deviceID)
	if err != nil {
		fail(err)
		return
	}
	leaf := chain[0]
	if err := g.store.AddCertificate(g.ctx, store.CertificateFor(c.deviceID, leaf)); err != nil {
		c.internal(env.ID, "renew", err)
		return
	}
	g.audit.Record(g.ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.CertRenewed,
		Target: "device:" + c.deviceID, Outcome: audit.Success, Details: map[string]string{
			"serial": identity.Serial(leaf.SerialNumber), "not_after": timefmt.JSON(leaf.NotAfter)}})
	c.send(protocol.TypeRenewed, protocol.Renewed{Ref: env.ID, Certificate: identity.EncodeChain(chain...)})
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
		c.ws.Close()
	}
	return err
}

func (c *conn) close(code int, reason string) {
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	c.ws.Close()
}
