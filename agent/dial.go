package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
)

func (a *Agent) dial(ctx context.Context) (*websocket.Conn, error) {
	cert, err := a.dir.Certificate()
	if err != nil {
		return nil, fmt.Errorf("device certificate: %w", err)
	}
	roots, err := a.dir.Roots()
	if err != nil {
		return nil, fmt.Errorf("pinned root: %w", err)
	}
	u, err := url.Parse(a.cfg.GatewayURL)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 15 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 4096}
	if a.localAddr != nil {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: a.localAddr}}
		d.NetDialContext = nd.DialContext
	}
	cfg := fips.TLS(a.fips)
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, u.Hostname(), []tls.Certificate{*cert}
	ws, resp, err := wshandshake.Dial(ctx, d, a.cfg.GatewayURL, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("gateway refused: %s", resp.Status)
		}
		return nil, err
	}
	return ws, nil
}

// backoff is "full jitter": uniform in [0, min(max, base·2^attempt)), so
// a fleet reconnecting after a server restart spreads out instead of
// arriving in lockstep.
func (a *Agent) backoff(attempt int) time.Duration {
	ceil := a.backoffMax
	if attempt < 30 {
		ceil = min(a.backoffMax, a.backoffBase<<attempt)
	}
	if ceil <= 0 {
		return 0
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceil)))
	if err != nil {
		return ceil
	}
	return time.Duration(n.Int64())
}
