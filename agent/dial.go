package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
)

// sessionCacheSize holds a ticket per gateway name; behind a load
// balancer all processes share one name and, through the database, their
// ticket keys, so one entry serves them all.
const sessionCacheSize = 4

// dial connects to the gateway. The TLS session cache lives as long as
// the agent, so that a reconnect, after a server restart too, resumes
// the session from a ticket instead of a full handshake (wshandshake
// clones cfg; the clone shares the cache).
func (a *Agent) dial(ctx context.Context) (*websocket.Conn, error) {
	cfg, _, err := a.gatewayTLS()
	if err != nil {
		return nil, err
	}
	// tcpUp and serverSpoke tell a refusal before the handshake (the
	// server's admission control) from a server that is down or one
	// whose certificate is wrong. Both are set on this goroutine, inside
	// wshandshake.Dial.
	var tcpUp, serverSpoke bool
	nd := net.Dialer{}
	if a.localAddr != nil {
		nd.LocalAddr = &net.TCPAddr{IP: a.localAddr}
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 4096,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			tcpUp = err == nil
			return c, err
		}}
	cfg.ClientSessionCache = a.sessionsFor(&cfg.Certificates[0])
	cfg.VerifyConnection = func(tls.ConnectionState) error { serverSpoke = true; return nil }
	ws, resp, err := wshandshake.Dial(ctx, d, a.cfg.GatewayURL, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, dialError(ctx, resp, err, tcpUp, serverSpoke)
	}
	return ws, nil
}

// gatewayTLS is the TLS of every connection to the gateway (the
// websocket, an update's download): the device's certificate, the root
// pinned at enrollment and the gateway's name, with the FIPS setting;
// and the gateway URL it is for.
func (a *Agent) gatewayTLS() (*tls.Config, *url.URL, error) {
	cert, err := a.dir.Certificate()
	if err != nil {
		return nil, nil, fmt.Errorf("device certificate: %w", err)
	}
	roots, err := a.dir.Roots()
	if err != nil {
		return nil, nil, fmt.Errorf("pinned root: %w", err)
	}
	u, err := url.Parse(a.cfg.GatewayURL)
	if err != nil {
		return nil, nil, err
	}
	cfg := fips.TLS(a.fips)
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, u.Hostname(), []tls.Certificate{*cert}
	return cfg, u, nil
}

// dialError says why a dial failed, as a *busyError when the server
// turned the agent away for load: 503 (with its Retry-After), or a
// connection closed or alerted after TCP connected but before the
// server's certificate arrived.
func dialError(ctx context.Context, resp *http.Response, err error, tcpUp, serverSpoke bool) error {
	if resp != nil {
		err = fmt.Errorf("gateway refused: %s", resp.Status)
		if resp.StatusCode == http.StatusServiceUnavailable {
			secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return &busyError{retryAfter: time.Duration(min(max(secs, 1), 3600)) * time.Second, err: err}
		}
		return err
	}
	var cve *tls.CertificateVerificationError
	if tcpUp && !serverSpoke && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &cve) {
		return &busyError{err: err}
	}
	return err
}

// tlsResumed says whether ws's TLS session was resumed from a ticket.
func tlsResumed(ws *websocket.Conn) bool {
	tc, ok := ws.NetConn().(*tls.Conn)
	return ok && tc.ConnectionState().DidResume
}

// sessionsFor is the session cache for cert. A ticket carries the
// certificate it was issued for, and crypto/tls would resume with it
// whatever certificate the config holds now: after a renewal the cache
// starts afresh, so the server sees the new certificate.
func (a *Agent) sessionsFor(cert *tls.Certificate) tls.ClientSessionCache {
	if len(cert.Certificate) > 0 && !bytes.Equal(cert.Certificate[0], a.sessionCert) {
		a.sessions = tls.NewLRUClientSessionCache(sessionCacheSize)
		a.sessionCert = bytes.Clone(cert.Certificate[0])
	}
	return a.sessions
}
