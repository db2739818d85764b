package agent

import (
	"context"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/protocol"
)

type session struct {
	a       *Agent
	ws      *websocket.Conn
	ctx     context.Context // ends with the connection
	renewID string
	results chan []byte // command answers to write
}

// session runs one connection. established says whether the server
// accepted us (hello acknowledged), which resets the backoff.
func (a *Agent) session(ctx context.Context) (established bool, err error) {
	ws, err := a.dial(ctx)
	if err != nil {
		return false, err
	}
	defer ws.Close()
	s := &session{a: a, ws: ws, results: make(chan []byte, 16)}
	ws.SetReadLimit(protocol.MaxFrameBytes)
	ws.SetReadDeadline(time.Now().Add(a.readTimeout))
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(a.readTimeout))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
	})
	incoming := make(chan protocol.Envelope, 16)
	readErr := make(chan error, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = sctx
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				readErr <- err
				return
			}
			ws.SetReadDeadline(time.Now().Add(a.readTimeout))
			env, err := protocol.Decode(data)
			if err != nil {
				a.log.Warn("undecodable frame from server", "err", err)
				continue
			}
			select {
			case incoming <- env:
			case <-sctx.Done():
				return
			}
		}
	}()

	helloID := uuid.NewString()
	if err := s.write(protocol.TypeHello, helloID, protocol.Hello{AgentVersion: a.version,
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Hostname: hostname(), Capabilities: a.announce.caps,
		CapabilityVersion: a.announce.version}); err != nil {
		return false, err
	}
	// Unacknowledged reports go first, oldest first, exactly as spooled:
	// the server deduplicates by report id, so a report whose ack was
	// lost is harmless to send again.
	pending, err := a.spool.Pending()
	if err != nil {
		return false, err
	}
	for _, it := range pending {
		if err := s.writeRaw(it.Frame); err != nil {
			return false, err
		}
		a.sent(it.ID)
	}
	if err := s.sendReports(); err != nil {
		return false, err
	}
	if err := s.report(ctx, true); err != nil {
		return false, err
	}
	s.maybeRenew()

	report := time.NewTicker(a.reportInterval)
	defer report.Stop()
	poll := time.NewTicker(a.pollInterval)
	defer poll.Stop()
	renew := time.NewTicker(a.renewCheck)
	defer renew.Stop()
	for {
		select {
		case <-ctx.Done():
			ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "agent stopping"), time.Now().Add(time.Second))
			return established, nil
		case err := <-readErr:
			return established, err
		case env := <-incoming:
			if env.Type == protocol.TypeAck && !established {
				var ack protocol.Ack
				if protocol.DecodeBody(env, &ack) == nil && ack.Ref == helloID {
					established = true
					a.setStatus(func(st *state.Status) { st.Connection = "connected"; st.LastError = "" })
					a.log.Info("connected to gateway", "device_id", a.cfg.DeviceID, "url", a.cfg.GatewayURL, "tls_resumed", tlsResumed(ws))
					if a.obs.Connected != nil {
						a.obs.Connected(tlsResumed(ws))
					}
					// Before the commands the hello releases are read:
					// a redelivered update finds its answer recorded.
					s.resolveUpdate()
				}
			}
			s.handle(env)
		case <-report.C:
			err = s.report(ctx, true)
		case <-poll.C:
			err = s.report(ctx, false)
		case <-a.trigger:
			err = s.report(ctx, true)
		case <-renew.C:
			s.maybeRenew()
		case <-a.reportKick:
			err = s.sendReports()
		case frame := <-s.results:
			if err = s.writeRaw(frame); err == nil {
				a.sent(resultID(frame))
			}
		}
		if err != nil {
			return established, err
		}
	}
}

func (s *session) write(typ, id string, body any) error {
	frame, err := protocol.Encode(typ, id, time.Now(), body)
	if err != nil {
		return err
	}
	return s.writeRaw(frame)
}

func (s *session) writeRaw(frame []byte) error {
	s.ws.SetWriteDeadline(time.Now().Add(15 * time.Second))
	return s.ws.WriteMessage(websocket.TextMessage, frame)
}

// report captures posture and, when there is a new report, sends it.
func (s *session) report(ctx context.Context, force bool) error {
	id, frame, err := s.a.capture(ctx, force)
	if err != nil || frame == nil {
		return err
	}
	if err := s.writeRaw(frame); err != nil {
		return err
	}
	s.a.sent(id)
	return nil
}

func (s *session) handle(env protocol.Envelope) {
	a := s.a
	switch env.Type {
	case protocol.TypeAck:
		var ack protocol.Ack
		if err := protocol.DecodeBody(env, &ack); err != nil {
			return
		}
		if a.reports.Has(ack.Ref) {
			a.reportAnswered(ack.Ref, ack, "")
			return
		}
		if err := a.spool.Remove(ack.Ref); err != nil {
			a.log.Error("spool remove", "err", err)
		}
		now := time.Now().UTC()
		a.setStatus(func(st *state.Status) { st.LastAckAt = &now; st.Spooled = a.spool.Len() })
		a.acked(ack.Ref)
		if a.obs.Acked != nil {
			a.obs.Acked(ack.Ref)
		}
	case protocol.TypeError:
		var e protocol.Error
		if err := protocol.DecodeBody(env, &e); err != nil {
			return
		}
		a.log.Warn("server refused a frame", "ref", e.Ref, "code", e.Code, "message", e.Message)
		// A frame the server will never accept is dropped; one it could
		// not store is kept for the next connection.
		if e.Code != protocol.CodeInternal && e.Ref != "" {
			if a.reports.Has(e.Ref) {
				a.reportAnswered(e.Ref, protocol.Ack{}, e.Message)
				return
			}
			a.spool.Remove(e.Ref)
		}
	case protocol.TypeDeviceState:
		a.deviceState(env)
	case protocol.TypeReconnectHint:
		a.hinted(env)
	case protocol.TypeCommand:
		s.command(s.ctx, env)
	case protocol.TypeRenewed:
		var r protocol.Renewed
		if err := protocol.DecodeBody(env, &r); err != nil || r.Ref != s.renewID {
			return
		}
		if err := s.installRenewed(r.Certificate); err != nil {
			a.log.Error("renewed certificate rejected", "err", err)
			return
		}
		a.log.Info("device certificate renewed")
	}
}
