package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// handle dispatches one agent frame. Every store and service call it
// makes shares one deadline (WithFrameTimeout) under the connection's
// context (a command's answer excepted, below); a frame acknowledged is a
// frame committed, so one that runs out of time gets an internal error
// and the agent sends it again.
func (c *conn) handle(data []byte, received time.Time) {
	env, err := protocol.Decode(data)
	if err != nil {
		c.sendError(env.ID, protocol.CodeFor(err), err.Error())
		return
	}
	ctx, cancel := c.frameContext()
	defer cancel()
	switch env.Type {
	case protocol.TypeHello:
		c.hello(ctx, env)
	case protocol.TypePosture:
		c.posture(ctx, env, received)
	case protocol.TypeCommandResult:
		// An answer is the record of what was done to the device (a
		// lock, a wipe), and a device whose connection the server drops
		// because it was revoked never sends it again: the connection's
		// end does not cancel it. Its deadline holds.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(c.ctx), c.g.frameTimeout)
		defer rcancel()
		c.commandResult(rctx, env)
	case protocol.TypeRenew:
		c.renew(ctx, env)
	case protocol.TypeIncidentReport:
		c.incidentReport(ctx, env, received)
	case protocol.TypeBluetoothRequest:
		c.bluetoothRequest(ctx, env)
	default:
		c.sendError(env.ID, protocol.CodeRefused, env.Type+" is not accepted from an agent")
	}
}

// hello records what the agent says about itself, keeps on the
// connection what it understands (the frames the server may push), and
// then sends it its state and pending commands.
func (c *conn) hello(ctx context.Context, env protocol.Envelope) {
	var h protocol.Hello
	err := protocol.DecodeBody(env, &h)
	if err == nil {
		err = h.Check()
	}
	if err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	c.announce(h.CapabilityVersion, h.Capabilities)
	facts := store.HelloFacts{Hostname: h.Hostname, Platform: h.Platform, AgentVersion: h.AgentVersion,
		CapabilityVersion: int(h.CapabilityVersion), Capabilities: h.Capabilities}
	if err := c.g.commit.Commit(ctx, func(tx Tx) error { return tx.UpdateHello(ctx, c.deviceID, facts) }); err != nil {
		c.internal(env.ID, "hello", err)
		return
	}
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID})
	if c.g.incidents != nil {
		c.sendState(ctx)
	}
	if c.g.commands != nil {
		c.g.commands.Ready(ctx, c.deviceID)
	}
	c.sendReconnectHint()
}

func (c *conn) posture(ctx context.Context, env protocol.Envelope, received time.Time) {
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
	var dup bool
	err := c.g.commit.Commit(ctx, func(tx Tx) (err error) {
		dup, err = tx.SavePosture(ctx, rep, lock)
		return err
	})
	if err != nil {
		c.internal(env.ID, "posture", err)
		return
	}
	c.g.metrics.commitTime.Observe(time.Since(received).Seconds())
	if !dup {
		c.g.metrics.reports.Inc()
	}
	// Only now, committed, may the agent drop the report from its spool.
	// A report from a wrong clock is acknowledged like any other: it is
	// stored (at its receive time), and refusing it would only keep it
	// in the spool, to be sent again.
	c.send(protocol.TypeAck, protocol.Ack{Ref: env.ID})
	if tr.Skewed && !dup {
		c.clockSkewed(ctx, env.ID, collected, received, tr.SkewSeconds)
	}
	if c.g.compliance != nil {
		if err := c.g.compliance.Evaluate(ctx, c.deviceID, p); err != nil {
			c.g.log.Error("compliance evaluation", "device_id", c.deviceID, "err", err)
		}
	}
}

// clockSkewed logs every report from a wrong clock and audits the first
// of each connection.
func (c *conn) clockSkewed(ctx context.Context, reportID string, deviceAt, received time.Time, skew int64) {
	g := c.g
	g.log.Warn("device clock is off; report kept at its receive time", "device_id", c.deviceID,
		"report", reportID, "device_time", deviceAt, "skew_seconds", skew)
	if c.skewAudited {
		return
	}
	c.skewAudited = true
	g.audit.Record(ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.DeviceClockSkew,
		Target: "device:" + c.deviceID, Outcome: audit.Denied, Details: map[string]string{
			"report": reportID, "device_time": timefmt.JSON(deviceAt),
			"received_at": timefmt.JSON(received), "skew_seconds": strconv.FormatInt(skew, 10),
			"enrolled_at": timefmt.JSON(c.enrolledAt)}})
}

func (c *conn) commandResult(ctx context.Context, env protocol.Envelope) {
	var r protocol.CommandResult
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.commands == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server runs no command queue")
		return
	}
	after, err := c.g.commands.Result(ctx, c.deviceID, c.remote, r)
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

func (c *conn) incidentReport(ctx context.Context, env protocol.Envelope, received time.Time) {
	var r protocol.IncidentReport
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.incidents == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server takes no incident reports")
		return
	}
	id, err := c.g.incidents.Report(ctx, c.deviceID, c.remote, env.ID, r, clockAhead(env.TS, received))
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

func (c *conn) bluetoothRequest(ctx context.Context, env protocol.Envelope) {
	var r protocol.BluetoothRequest
	if err := protocol.DecodeBody(env, &r); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	if c.g.compliance == nil {
		c.sendError(env.ID, protocol.CodeRefused, "this server takes no Bluetooth requests")
		return
	}
	id, err := c.g.compliance.AgentRequest(ctx, c.deviceID, c.remote, env.ID, r)
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

// sendState sends device_state, when the agent takes it.
func (c *conn) sendState(ctx context.Context) {
	if !c.accepts(protocol.TypeDeviceState) {
		return
	}
	st, err := c.g.incidents.State(ctx, c.deviceID)
	if err != nil {
		c.g.log.Error("device state", "device_id", c.deviceID, "err", err)
		return
	}
	c.send(protocol.TypeDeviceState, st)
}

func (c *conn) renew(ctx context.Context, env protocol.Envelope) {
	g := c.g
	var req protocol.Renew
	if err := protocol.DecodeBody(env, &req); err != nil {
		c.sendError(env.ID, protocol.CodeMalformed, err.Error())
		return
	}
	fail := func(err error) {
		g.audit.Record(ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.CertRenewed,
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
	chain, err := g.signer.SignDevice(ctx, csr, c.deviceID)
	if err != nil {
		if ctx.Err() != nil {
			// Out of time is not a refusal: the agent asks again.
			c.internal(env.ID, "renew", err)
			return
		}
		fail(err)
		return
	}
	leaf := chain[0]
	if err := g.store.AddCertificate(ctx, store.CertificateFor(c.deviceID, leaf)); err != nil {
		c.internal(env.ID, "renew", err)
		return
	}
	g.audit.Record(ctx, audit.Entry{Actor: "device:" + c.deviceID, Source: c.remote, Action: audit.CertRenewed,
		Target: "device:" + c.deviceID, Outcome: audit.Success, Details: map[string]string{
			"serial": identity.Serial(leaf.SerialNumber), "not_after": timefmt.JSON(leaf.NotAfter)}})
	c.send(protocol.TypeRenewed, protocol.Renewed{Ref: env.ID, Certificate: identity.EncodeChain(chain...)})
}
