// Package wshandshake performs the RFC 6455 opening handshake so that it
// works under GODEBUG=fips140=only.
//
// The handshake proves the server speaks WebSocket by returning
// base64(SHA-1(key + GUID)) in Sec-WebSocket-Accept. That digest protects
// nothing: the key is a public nonce sent in clear inside the TLS channel,
// and no secret, integrity or authentication rests on it. FIPS 140-3
// allows a non-approved algorithm in such a non-security function, but
// Go's strict mode cannot tell the difference and refuses SHA-1, so the
// handshake alone runs without enforcement. TLS (key agreement,
// certificates, record encryption) stays enforced: the client finishes its
// TLS handshake before the exemption starts, and the server's listener
// finished it before the HTTP handler runs.
package wshandshake

import (
	"context"
	"crypto/fips140"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/url"

	"github.com/gorilla/websocket"
)

// Upgrade upgrades a request whose TLS handshake is already complete.
func Upgrade(u *websocket.Upgrader, w http.ResponseWriter, r *http.Request, h http.Header) (*websocket.Conn, error) {
	var (
		ws  *websocket.Conn
		err error
	)
	fips140.WithoutEnforcement(func() { ws, err = u.Upgrade(w, r, h) })
	return ws, err
}

// Dial connects to a wss:// URL: the TLS handshake under cfg, then the
// websocket handshake. d's own TLS settings are ignored; d.NetDialContext,
// when set, opens the TCP connection (a chosen source address).
func Dial(ctx context.Context, d websocket.Dialer, rawURL string, cfg *tls.Config, h http.Header) (*websocket.Conn, *http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	if u.Scheme != "wss" {
		return nil, nil, errors.New("websocket URL must use wss://")
	}
	if d.HandshakeTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.HandshakeTimeout)
		defer cancel()
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	var conn net.Conn
	if d.NetDialContext != nil {
		raw, err := d.NetDialContext(ctx, "tcp", host)
		if err != nil {
			return nil, nil, err
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, nil, err
		}
		conn = tc
	} else {
		td := tls.Dialer{Config: cfg}
		if conn, err = td.DialContext(ctx, "tcp", host); err != nil {
			return nil, nil, err
		}
	}
	used := false
	d.TLSClientConfig = nil
	d.NetDialTLSContext = func(context.Context, string, string) (net.Conn, error) {
		if used {
			return nil, errors.New("wshandshake: connection already used")
		}
		used = true
		return conn, nil
	}
	var (
		ws   *websocket.Conn
		resp *http.Response
	)
	fips140.WithoutEnforcement(func() { ws, resp, err = d.DialContext(ctx, rawURL, h) })
	if err != nil {
		conn.Close()
	}
	return ws, resp, err
}
