package gateway

import (
	"crypto/fips140"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/protocol"
)

const testDevice = "6f1c1d2e-1111-4222-8333-444455556666"

// peer is a test's end of a real websocket to the gateway, standing where
// the agent would; a goroutine reads every frame the server sends.
type peer struct {
	t      *testing.T
	ws     *websocket.Conn
	frames chan protocol.Envelope
	closed chan error
	// hints are the reconnect hints, kept apart: advisory, they may come
	// at any time (admission_test.go reads them).
	hints chan protocol.Envelope
}

// newGateway builds a gateway on fakes and closes it when the test ends.
func newGateway(t *testing.T, st *fakeStore, au *fakeAuditor, opts ...Option) *Gateway {
	t.Helper()
	g := New(st, nil, au, opts...)
	t.Cleanup(func() { g.Close() })
	return g
}

// dial connects testDevice to g over a websocket on loopback, without
// TLS (the handshake checks have tests of their own): from the upgrade
// on, the connection runs exactly as one ServeHTTP accepted.
func dial(t *testing.T, g *Gateway) *peer {
	t.Helper()
	// The server forgets a hijacked connection, so its Close does not
	// wait for the handler; the test does, before the gateway closes.
	var handlers sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		ws, err := wshandshake.Upgrade(&g.upgrader, w, r, nil)
		if err != nil {
			return
		}
		g.serve(ws, testDevice, "127.0.0.1", time.Now().Add(-time.Hour), map[string]string{"serial": "1"})
	}))
	t.Cleanup(func() {
		srv.Close()
		handlers.Wait()
	})
	var (
		ws  *websocket.Conn
		err error
	)
	// The opening handshake's SHA-1 protects nothing (see wshandshake),
	// and this loopback test has no TLS to complete first.
	fips140.WithoutEnforcement(func() {
		ws, _, err = websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	p := newPeer(t, ws)
	// Frames may be sent once the server holds the connection.
	deadline := time.Now().Add(5 * time.Second)
	for g.hub.get(testDevice) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never registered the connection")
		}
		time.Sleep(time.Millisecond)
	}
	return p
}

// newPeer reads ws on a goroutine of its own until it ends.
func newPeer(t *testing.T, ws *websocket.Conn) *peer {
	p := &peer{t: t, ws: ws, frames: make(chan protocol.Envelope, 16), closed: make(chan error, 1), hints: make(chan protocol.Envelope, 16)}
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				p.closed <- err
				return
			}
			env, err := protocol.Decode(data)
			if err != nil {
				p.closed <- err
				return
			}
			if env.Type == protocol.TypeReconnectHint {
				p.hints <- env
				continue
			}
			p.frames <- env
		}
	}()
	return p
}

func (p *peer) send(typ, id string, body any) {
	p.t.Helper()
	frame, err := protocol.Encode(typ, id, time.Now(), body)
	if err != nil {
		p.t.Fatal(err)
	}
	p.sendRaw(frame)
}

func (p *peer) sendRaw(frame []byte) {
	p.t.Helper()
	if err := p.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		p.t.Fatal(err)
	}
}

func (p *peer) next() protocol.Envelope {
	p.t.Helper()
	select {
	case env := <-p.frames:
		return env
	case err := <-p.closed:
		p.t.Fatalf("connection ended waiting for a frame: %v", err)
	case <-time.After(5 * time.Second):
		p.t.Fatal("no frame from the server")
	}
	return protocol.Envelope{}
}

// none asserts that the server sends nothing for d.
func (p *peer) none(d time.Duration) {
	p.t.Helper()
	select {
	case env := <-p.frames:
		p.t.Fatalf("unexpected %s frame: %s", env.Type, env.Body)
	case <-time.After(d):
	}
}

func (p *peer) ack(ref string) protocol.Ack {
	p.t.Helper()
	env := p.next()
	var a protocol.Ack
	if env.Type != protocol.TypeAck || protocol.DecodeBody(env, &a) != nil || a.Ref != ref {
		p.t.Fatalf("want an ack of %s, got %s %s", ref, env.Type, env.Body)
	}
	return a
}

func (p *peer) refusal(ref, code string) protocol.Error {
	p.t.Helper()
	env := p.next()
	var e protocol.Error
	if env.Type != protocol.TypeError || protocol.DecodeBody(env, &e) != nil || e.Ref != ref || e.Code != code {
		p.t.Fatalf("want a %s error for %q, got %s %s", code, ref, env.Type, env.Body)
	}
	return e
}

// hello says hello as an agent of version v with caps and takes the ack.
func (p *peer) hello(v protocol.CapabilityVersion, caps ...string) {
	p.t.Helper()
	p.send(protocol.TypeHello, "h1", protocol.Hello{Platform: "linux/amd64", Hostname: "probe", AgentVersion: "test",
		CapabilityVersion: v, Capabilities: caps})
	p.ack("h1")
}

func posture(at time.Time) protocol.Posture {
	return protocol.Posture{CollectedAt: at, OS: protocol.OSIdentity{Platform: "linux/amd64"}}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hubOf is the Hub view of g's connections, as the services see them.
func hubOf(g *Gateway) *Hub { return &Hub{h: g.hub} }
