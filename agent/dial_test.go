package agent

import (
	"crypto/tls"
	"testing"
)

// TestSessionCacheLastsAsLongAsTheCertificate: reconnects share one
// cache, and a renewed certificate starts a new one (a ticket would
// otherwise resume the old certificate's session).
func TestSessionCacheLastsAsLongAsTheCertificate(t *testing.T) {
	a := &Agent{}
	old := &tls.Certificate{Certificate: [][]byte{[]byte("old leaf")}}
	first := a.sessionsFor(old)
	if first == nil || a.sessionsFor(old) != first || a.sessionsFor(&tls.Certificate{Certificate: [][]byte{[]byte("old leaf")}}) != first {
		t.Fatal("reconnects with one certificate do not share the session cache")
	}
	renewed := a.sessionsFor(&tls.Certificate{Certificate: [][]byte{[]byte("new leaf")}})
	if renewed == first {
		t.Fatal("a renewed certificate kept the old certificate's sessions")
	}
}
