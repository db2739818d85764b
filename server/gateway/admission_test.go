package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
)

// TestResumedSessionIsStillChecked: crypto/tls runs VerifyConnection on a
// resumed session too, so a certificate revoked after its ticket was
// issued is refused on resumption, and audited.
func TestResumedSessionIsStillChecked(t *testing.T) {
	ca := newTestCA(t, "device CA")
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au)
	addr := agentListener(t, g, ca)
	cert, leaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, leaf, false)
	cfg := clientTLS(ca, cert)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	connect := func() (*tls.Conn, error) {
		ws, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 5 * time.Second}, "wss://"+addr+protocol.GatewayPath, cfg, nil)
		if ws == nil {
			return nil, err
		}
		defer ws.Close()
		return ws.NetConn().(*tls.Conn), err
	}
	first, err := connect()
	if err != nil {
		t.Fatal(err)
	}
	if first.ConnectionState().DidResume {
		t.Fatal("the first connection resumed")
	}
	second, err := connect()
	if err != nil {
		t.Fatal(err)
	}
	if !second.ConnectionState().DidResume {
		t.Fatal("the second connection did not resume")
	}
	// The connect is audited just after the upgrade answer.
	deadline := time.Now().Add(5 * time.Second)
	for len(au.of(audit.DeviceConnected)) < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Each connect is committed on its own, so the two entries may land
	// in either order: one full handshake, one resumed.
	got := au.of(audit.DeviceConnected)
	resumedEntries := map[string]int{}
	for _, e := range got {
		resumedEntries[e.Details["tls_resumed"]]++
	}
	if len(got) != 2 || resumedEntries["false"] != 1 || resumedEntries["true"] != 1 {
		t.Fatalf("connect entries: %+v", got)
	}
	st.enroll(testDevice, leaf, true)
	// In TLS 1.3 the client's handshake ends before the server checks the
	// client's certificate: the refusal comes as an alert on first read.
	var resumed bool
	ws, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 5 * time.Second}, "wss://"+addr+protocol.GatewayPath,
		withResumeProbe(cfg, &resumed), nil)
	if err == nil {
		ws.Close()
		t.Fatal("a revoked certificate connected on a resumed session")
	}
	if !resumed {
		t.Fatal("the refused connection did not offer and resume the session: the test proves nothing")
	}
	if e := refusedFor(t, au, "certificate revoked"); e.Details["tls_resumed"] != "true" {
		t.Fatalf("the refusal does not say it was on a resumed session: %+v", e)
	}
	settle(t, g, au, 2)
}

// settle waits until n connects were audited and the device's last
// connection has ended, so that no connection is still being served
// when the test's gateway closes.
func settle(t *testing.T, g *Gateway, au *fakeAuditor, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(au.of(audit.DeviceConnected)) < n || g.hub.get(testDevice) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the gateway still serves the test's connections")
		}
		time.Sleep(time.Millisecond)
	}
}

// withResumeProbe records whether the client's handshake resumed.
func withResumeProbe(cfg *tls.Config, resumed *bool) *tls.Config {
	c := cfg.Clone()
	c.VerifyConnection = func(cs tls.ConnectionState) error { *resumed = cs.DidResume; return nil }
	return c
}

// TestHandshakesBeyondTheLimitAreRefusedAtOnce: with every slot held by a
// client that sends nothing, the next connection gets a TLS alert at once
// (no timeout), and it connects once a slot is free.
func TestHandshakesBeyondTheLimitAreRefusedAtOnce(t *testing.T) {
	ca := newTestCA(t, "device CA")
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au, WithHandshakeLimit(1))
	addr := agentListener(t, g, ca)
	cert, leaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, leaf, false)
	idle := holdEverySlot(t, g, addr)
	url := "wss://" + addr + protocol.GatewayPath
	_, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: time.Minute}, url, clientTLS(ca, cert), nil)
	var op *net.OpError
	if err == nil || !errors.As(err, &op) || op.Op != "remote error" || !strings.Contains(err.Error(), "internal error") {
		t.Fatalf("a handshake beyond the limit: %v, want the server's internal_error alert", err)
	}
	if n := g.admit.ln.refused.Load(); n != 1 {
		t.Fatalf("%d refusals counted", n)
	}
	if len(au.of(audit.DeviceRefused)) != 0 {
		t.Fatal("a refusal for load was audited as a refused device")
	}
	for _, c := range idle {
		c.Close()
	}
	var ws *websocket.Conn
	for ws == nil { // the freed slots come back as the server notices the closes
		ws, _, err = wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: time.Minute}, url, clientTLS(ca, cert), nil)
		if err != nil && !errors.As(err, &op) {
			t.Fatal(err)
		}
	}
	ws.Close()
	settle(t, g, au, 1)
}

// TestUpgradeBeyondTheLimitIs503: when every upgrade slot is taken, or
// the gateway is closing, the answer is 503 with a Retry-After.
func TestUpgradeBeyondTheLimitIs503(t *testing.T) {
	g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithHandshakeLimit(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.Listener(ln, &tls.Config{}).Close()
	for range g.admit.slots() {
		g.admit.upgrades <- struct{}{}
	}
	rec := httptest.NewRecorder()
	if _, ok := g.admitUpgrade(rec); ok {
		t.Fatal("admitted beyond the limit")
	}
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("answer %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	<-g.admit.upgrades
	release, ok := g.admitUpgrade(httptest.NewRecorder())
	if !ok {
		t.Fatal("not admitted with a slot free")
	}
	release()
	g.closing.Store(true)
	if _, ok := g.admitUpgrade(httptest.NewRecorder()); ok {
		t.Fatal("admitted while closing")
	}
}

// TestHintFollowsTheFleet: an agent that announces reconnect_hint gets
// one after its hello; one from before the capability gets none.
func TestHintFollowsTheFleet(t *testing.T) {
	g := newGateway(t, newFakeStore(), &fakeAuditor{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.Listener(ln, &tls.Config{}).Close()
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	select {
	case env := <-p.hints:
		var h protocol.ReconnectHint
		if err := protocol.DecodeBody(env, &h); err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reconnect hint after the hello")
	}
	old := dial(t, g)
	old.hello(8, protocol.CapPosture, protocol.CapCommands)
	old.none(200 * time.Millisecond)
	select {
	case <-old.hints:
		t.Fatal("an agent of capability version 8 got a reconnect hint")
	default:
	}
}

// TestHintIsSentAgainWhenTheSpreadMoves: the hint loop sends every agent
// a new hint when the spread moved by more than a quarter and a second,
// and nothing while it stands still.
func TestHintIsSentAgainWhenTheSpreadMoves(t *testing.T) {
	g := newGateway(t, newFakeStore(), &fakeAuditor{}, WithReconnectHintInterval(20*time.Millisecond))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.Listener(ln, &tls.Config{}).Close()
	// A handshake that cost 30 s per core: one agent is a 30 s spread.
	g.admit.ln.cost.Store(int64(30*time.Second) * int64(runtime.GOMAXPROCS(0)))
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	for i := range 2 { // the hello's, then the loop's (it had sent none)
		select {
		case env := <-p.hints:
			var h protocol.ReconnectHint
			if err := protocol.DecodeBody(env, &h); err != nil || h.SpreadMS != 30_000 {
				t.Fatalf("hint %d: %+v %v, want a 30 s spread", i, h, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("hint %d did not come", i)
		}
	}
	select {
	case env := <-p.hints:
		t.Fatalf("a hint again while the spread stood still: %s", env.Body)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestRateIsAtLeastWhatWasAchieved: the rate the reconnect spread is
// computed from is never below the most handshakes completed in one
// second, however slow the cost estimate says a handshake is.
func TestRateIsAtLeastWhatWasAchieved(t *testing.T) {
	l := &handshakeListener{}
	l.cost.Store(int64(time.Second) * int64(runtime.GOMAXPROCS(0))) // the estimate: 1/s
	if r := l.rate(); r < 0.99 || r > 1.01 {
		t.Fatalf("rate %v before any handshake, want the estimate, 1/s", r)
	}
	base := time.Unix(1_800_000_000, 0)
	for i := range 300 {
		l.seen.add(base.Add(time.Duration(i) * time.Millisecond))
	}
	for i := range 40 {
		l.seen.add(base.Add(time.Second + time.Duration(i)*time.Millisecond))
	}
	if r := l.rate(); r != 300 {
		t.Fatalf("rate %v after 300 handshakes in one second and 40 in the next, want 300", r)
	}
}

// holdEverySlot opens a TCP connection per admission slot that never
// sends a ClientHello, so every slot stays taken until it is closed.
func holdEverySlot(t *testing.T, g *Gateway, addr string) []net.Conn {
	t.Helper()
	var idle []net.Conn
	for range g.admit.slots() {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		idle = append(idle, c)
	}
	return idle
}
