package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/gateway"
	"github.com/cordon-mdm/cordon/server/ticketkeys"
)

// serverCertLifetime is the console and gateway certificate's; it is
// re-issued before it runs out (see certSource).
const serverCertLifetime = 90 * 24 * time.Hour

// tlsConfigs are the console listener's TLS and the base of the agent
// listener's, both serving the certificate from certs. Agents present
// only their leaf and the gateway anchors on its own intermediate: a
// parsed intermediate per connection would stay in memory for the
// connection's life (crypto/tls keeps the chain).
func tlsConfigs(fipsMode bool, ca *pki.CA, certs *certSource) (console, agentBase *tls.Config) {
	console = fips.TLS(fipsMode)
	console.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return certs.get(context.Background()) }
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	roots.AddCert(ca.Intermediate())
	agentBase = fips.TLS(fipsMode)
	agentBase.GetCertificate = console.GetCertificate
	agentBase.ClientCAs = roots
	return console, agentBase
}

// publicHost is the name agents and browsers reach listen by.
func (s *Server) publicHost(listen string) string {
	if len(s.cfg.hostnames) > 0 {
		return s.cfg.hostnames[0]
	}
	host, _, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if h, err := os.Hostname(); err == nil {
			return h
		}
		return "localhost"
	}
	return host
}

// certHosts are the server certificate's SANs: both listen hosts (or the
// machine's name when listening on all addresses) plus --hostname values.
func (s *Server) certHosts() []string {
	seen := map[string]bool{}
	var hosts []string
	add := func(h string) {
		if h != "" && !seen[h] {
			seen[h] = true
			hosts = append(hosts, h)
		}
	}
	for _, h := range s.cfg.hostnames {
		add(h)
	}
	for _, l := range []string{s.cfg.listen, s.cfg.agentListen} {
		add(s.publicHost(l))
		if host, _, _ := net.SplitHostPort(l); host != "" {
			if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
				add(host)
			}
		}
	}
	if seen["127.0.0.1"] || seen["localhost"] {
		add("localhost")
		add("127.0.0.1")
	}
	return hosts
}

// certSource serves the server certificate and re-issues it when two
// thirds of its lifetime have passed, so a long-running server never
// presents an expired certificate.
type certSource struct {
	ca       *pki.CA
	hosts    []string
	lifetime time.Duration
	mu       sync.Mutex
	cert     *tls.Certificate
	renewAt  time.Time
}

func (c *certSource) get(ctx context.Context) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cert != nil && time.Now().Before(c.renewAt) {
		return c.cert, nil
	}
	leaf, key, chain, err := c.ca.ServerCertificate(ctx, c.hosts, c.lifetime)
	if err != nil {
		if c.cert != nil {
			return c.cert, nil // keep serving the old one; retried next handshake
		}
		return nil, err
	}
	// The root rides along so that agents pinning it by fingerprint at
	// enrollment can find it in the handshake.
	tc := &tls.Certificate{PrivateKey: key, Leaf: leaf, Certificate: [][]byte{leaf.Raw}}
	for _, ch := range chain {
		tc.Certificate = append(tc.Certificate, ch.Raw)
	}
	tc.Certificate = append(tc.Certificate, c.ca.Root().Raw)
	c.cert = tc
	c.renewAt = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 2 / 3)
	return tc, nil
}

// DefaultHandshakesPerCore is --handshakes-per-core's default.
const DefaultHandshakesPerCore = gateway.DefaultHandshakesPerCore

// handshakeConfig is the agent listener's handshake settings.
type handshakeConfig struct {
	perCore int // 0: gateway.DefaultHandshakesPerCore
}

// WithHandshakeLimit bounds the agent listener's TLS handshakes (and
// websocket upgrades) in progress to perCore per CPU; the excess is
// refused at once and told when to come back (--handshakes-per-core).
func WithHandshakeLimit(perCore int) Option {
	return func(c *config) error {
		if perCore < 0 {
			return fmt.Errorf("--handshakes-per-core must be positive, got %d", perCore)
		}
		c.handshakes.perCore = perCore
		return nil
	}
}

// Files in the data dir holding the session-ticket keys (SQLite) and the
// key that seals them in a shared database (PostgreSQL).
const (
	ticketKeysFile = "ticket-keys.json"
	ticketWrapFile = "ticket-wrap.key"
)

// sessionTickets gives cfg, the agent listener's own config, ticket keys
// that outlive the process (and, on PostgreSQL, that every process
// shares), and keeps them rotated until ctx ends. Without them an agent
// resumes nothing after a restart, but it still connects: a failure is
// logged, and crypto/tls's own per-process keys serve meanwhile.
func (s *Server) sessionTickets(ctx context.Context, cfg *tls.Config) {
	var st ticketkeys.Store = ticketkeys.NewFile(filepath.Join(s.cfg.dataDir, ticketKeysFile))
	if s.Store.Dialect() == "postgres" {
		wrap, err := ticketkeys.WrapKey(filepath.Join(s.cfg.dataDir, ticketWrapFile))
		var sealed *ticketkeys.Sealed
		if err == nil {
			sealed, err = ticketkeys.NewSealed(s.Store, wrap)
		}
		if err != nil {
			s.log.Warn("session ticket keys unavailable: agents make full handshakes after a restart", "err", err)
			return
		}
		st = sealed
	}
	r := ticketkeys.New(st, ticketkeys.WithLogger(s.log))
	if err := r.Refresh(ctx); err != nil {
		s.log.Warn("session ticket keys not loaded: retried in the background", "err", err)
	}
	r.Attach(cfg)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		r.Run(ctx)
	}()
}
