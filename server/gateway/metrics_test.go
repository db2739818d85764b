package gateway

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cordon-mdm/cordon/internal/metricstest"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/protocol"
)

func handshakes(g *Gateway, outcome string) float64 {
	return testutil.ToFloat64(g.metrics.handshakes.WithLabelValues(outcome))
}

// waitHandshakes waits for the server's side of a handshake to be
// counted: in TLS 1.3 the client finishes first.
func waitHandshakes(t *testing.T, g *Gateway, outcome string, n float64) {
	t.Helper()
	waitFor(t, "handshakes "+outcome, func() bool { return handshakes(g, outcome) == n })
}

// Every outcome exists before its first event, each handshake is counted
// once under its own, and completed ones are timed.
func TestHandshakeOutcomesAreCounted(t *testing.T) {
	ca := newTestCA(t, "device CA")
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au)
	for _, o := range []string{OutcomeAccepted, OutcomeResumed, OutcomeRefused, OutcomeAdmissionLimited, OutcomeFailed} {
		if handshakes(g, o) != 0 {
			t.Fatalf("%s starts at %v", o, handshakes(g, o))
		}
	}
	if n := testutil.CollectAndCount(g.metrics.handshakes); n != 5 {
		t.Fatalf("%d outcome series before any handshake, want 5", n)
	}
	addr := agentListener(t, g, ca)
	url := "wss://" + addr + protocol.GatewayPath
	cert, leaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, leaf, false)
	cfg := clientTLS(ca, cert)
	cfg.MinVersion = tls.VersionTLS13
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	connect := func(cfg *tls.Config) error {
		ws, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 5 * time.Second}, url, cfg, nil)
		if ws != nil {
			ws.Close()
		}
		return err
	}
	if err := connect(cfg); err != nil {
		t.Fatal(err)
	}
	waitHandshakes(t, g, OutcomeAccepted, 1)
	if err := connect(cfg); err != nil {
		t.Fatal(err)
	}
	waitHandshakes(t, g, OutcomeResumed, 1)

	stranger, _ := newTestCA(t, "another CA").validDevice(t, testDevice)
	if err := connect(clientTLS(ca, stranger)); err == nil {
		t.Fatal("a certificate of another CA connected")
	}
	waitHandshakes(t, g, OutcomeRefused, 1)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // nothing presented: failed, not refused
	waitHandshakes(t, g, OutcomeFailed, 1)

	if n := metricstest.HistogramCount(t, g.metrics.handshakeTime); n != 2 {
		t.Fatalf("%d handshakes timed, want the 2 that completed", n)
	}
	if handshakes(g, OutcomeAccepted) != 1 || handshakes(g, OutcomeResumed) != 1 || handshakes(g, OutcomeAdmissionLimited) != 0 {
		t.Fatal("a handshake was counted under another outcome too")
	}
	settle(t, g, au, 2)
}

// A connection turned away by admission control counts as
// admission_limited, not as a failure.
func TestAdmissionLimitedHandshakesAreCounted(t *testing.T) {
	ca := newTestCA(t, "device CA")
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au, WithHandshakeLimit(1))
	addr := agentListener(t, g, ca)
	cert, leaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, leaf, false)
	idle := holdEverySlot(t, g, addr)
	// The slots are taken once the listener accepted the idle conns: a
	// refusal before that would be a handshake.
	waitFor(t, "the slots taken", func() bool { return len(g.admit.ln.slots) == cap(g.admit.ln.slots) })
	_, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: time.Minute},
		"wss://"+addr+protocol.GatewayPath, clientTLS(ca, cert), nil)
	if err == nil {
		t.Fatal("a handshake beyond the limit connected")
	}
	if n := handshakes(g, OutcomeAdmissionLimited); n != 1 {
		t.Fatalf("admission_limited %v, want 1", n)
	}
	for _, c := range idle {
		c.Close()
	}
	waitHandshakes(t, g, OutcomeFailed, float64(len(idle)))
	if handshakes(g, OutcomeAccepted)+handshakes(g, OutcomeRefused) != 0 {
		t.Fatal("the refused connection was counted as a handshake")
	}
}

// A report counts once when committed, and every acknowledged one
// (a resend too) is timed from its receipt to its commit; the writer
// counts its transactions' sizes.
func TestReportsCountedOnceCommitted(t *testing.T) {
	g, _, _ := realGateway(t)
	p := dial(t, g)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	p.send(protocol.TypePosture, "r1", posture(time.Now()))
	p.ack("r1")
	if n := testutil.ToFloat64(g.metrics.reports); n != 1 {
		t.Fatalf("ingested %v after the ack, want 1", n)
	}
	p.send(protocol.TypePosture, "r1", posture(time.Now()))
	p.ack("r1")
	if n := testutil.ToFloat64(g.metrics.reports); n != 1 {
		t.Fatalf("ingested %v after a resend, want still 1", n)
	}
	if n := metricstest.HistogramCount(t, g.metrics.commitTime); n != 2 {
		t.Fatalf("%d commits timed, want 2", n)
	}
	// The connect, the hello and two reports: at least one transaction,
	// at most four.
	if n := metricstest.HistogramCount(t, g.writer.Collectors()[0]); n < 1 || n > 4 {
		t.Fatalf("%d group-commit batches observed, want 1 to 4", n)
	}
}
