package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"sync"
	"time"

	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/pki"
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
