package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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

func TestDialErrorsTellABusyServer(t *testing.T) {
	ctx := context.Background()
	resp := func(code int, retryAfter string) *http.Response {
		r := &http.Response{StatusCode: code, Status: http.StatusText(code), Header: http.Header{}}
		if retryAfter != "" {
			r.Header.Set("Retry-After", retryAfter)
		}
		return r
	}
	alert := errors.New("remote error: tls: internal error")
	for name, c := range map[string]struct {
		err                error
		resp               *http.Response
		tcpUp, serverSpoke bool
		busy               bool
		retryAfter         time.Duration
	}{
		"503 with Retry-After":           {err: websocket.ErrBadHandshake, resp: resp(503, "7"), busy: true, retryAfter: 7 * time.Second},
		"503 without Retry-After":        {err: websocket.ErrBadHandshake, resp: resp(503, ""), busy: true, retryAfter: time.Second},
		"403, a revoked device":          {err: websocket.ErrBadHandshake, resp: resp(403, "")},
		"closed before the handshake":    {err: alert, tcpUp: true, busy: true},
		"server down":                    {err: syscall.ECONNREFUSED},
		"refused after the server spoke": {err: alert, tcpUp: true, serverSpoke: true},
		"handshake timed out":            {err: context.DeadlineExceeded, tcpUp: true},
		"wrong server certificate":       {err: &tls.CertificateVerificationError{Err: errors.New("x509")}, tcpUp: true},
	} {
		err := dialError(ctx, c.resp, c.err, c.tcpUp, c.serverSpoke)
		var busy *busyError
		if got := errors.As(err, &busy); got != c.busy {
			t.Errorf("%s: busy = %v (%v), want %v", name, got, err, c.busy)
			continue
		}
		if c.busy && busy.retryAfter != c.retryAfter {
			t.Errorf("%s: Retry-After %v, want %v", name, busy.retryAfter, c.retryAfter)
		}
	}
}
