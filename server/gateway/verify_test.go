package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// testCA signs real certificates (ECDSA P-256, SHA-256: what FIPS mode
// allows) for the handshake checks.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// issue signs tmpl and returns it as a TLS certificate and parsed.
func (ca *testCA) issue(t *testing.T, tmpl *x509.Certificate) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf
}

// device is a device certificate for id, valid from notBefore to notAfter.
func (ca *testCA) device(t *testing.T, id string, notBefore, notAfter time.Time) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: id}, NotBefore: notBefore, NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if id != "" {
		tmpl.URIs = append(tmpl.URIs, identity.DeviceURI(id))
	}
	return ca.issue(t, tmpl)
}

func (ca *testCA) validDevice(t *testing.T, id string) (tls.Certificate, *x509.Certificate) {
	return ca.device(t, id, time.Now().Add(-time.Minute), time.Now().Add(time.Hour))
}

// enroll records the certificate as issued to id (and id as enrolled).
func (st *fakeStore) enroll(id string, leaf *x509.Certificate, revoked bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := identity.Serial(leaf.SerialNumber)
	st.certs[s] = &store.Certificate{Serial: s, DeviceID: id, Revoked: revoked}
	st.devices[id] = &store.Device{ID: id, Status: store.StatusActive}
}

func TestVerifyConnection(t *testing.T) {
	ca := newTestCA(t, "device CA")
	st := newFakeStore()
	g := newGateway(t, st, &fakeAuditor{})
	const other = "0a0b0c0d-0000-4000-8000-000000000001"
	_, good := ca.validDevice(t, testDevice)
	st.enroll(testDevice, good, false)
	_, revoked := ca.validDevice(t, testDevice)
	st.enroll(testDevice, revoked, true)
	_, othersCert := ca.validDevice(t, other)
	st.enroll(other, othersCert, false)
	_, claimsOthers := ca.validDevice(t, testDevice)
	st.mu.Lock()
	st.certs[identity.Serial(claimsOthers.SerialNumber)] = &store.Certificate{Serial: identity.Serial(claimsOthers.SerialNumber), DeviceID: other}
	st.mu.Unlock()
	_, unknown := ca.validDevice(t, testDevice)
	_, noID := ca.device(t, "", time.Now().Add(-time.Minute), time.Now().Add(time.Hour))

	for _, c := range []struct {
		name   string
		certs  []*x509.Certificate
		reason string // "": accepted
	}{
		{"an enrolled device's certificate", []*x509.Certificate{good}, ""},
		{"a revoked certificate", []*x509.Certificate{revoked}, "certificate revoked"},
		{"a certificate never recorded", []*x509.Certificate{unknown}, "certificate was not issued to an enrolled device"},
		{"a certificate recorded for another device", []*x509.Certificate{claimsOthers}, "certificate does not belong to this device"},
		{"a certificate without a device id", []*x509.Certificate{noID}, "not a device certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := g.verifyConnection(tls.ConnectionState{PeerCertificates: c.certs})
			if c.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ref *refusal
			if !errors.As(err, &ref) || ref.reason != c.reason {
				t.Fatalf("got %v, want the refusal %q", err, c.reason)
			}
		})
	}
	if err := g.verifyConnection(tls.ConnectionState{}); err == nil {
		t.Fatal("no client certificate was accepted")
	}
	// A store that does not answer is not a refusal (nothing to audit
	// against the device), but nothing is let in either.
	st.mu.Lock()
	st.certErr = errors.New("database is down")
	st.mu.Unlock()
	err := g.verifyConnection(tls.ConnectionState{PeerCertificates: []*x509.Certificate{good}})
	var ref *refusal
	if err == nil || errors.As(err, &ref) || !strings.Contains(err.Error(), "revocation check failed") {
		t.Fatalf("with the store down: %v", err)
	}
}

// agentListener serves g on loopback behind its own TLS and handshake
// listener, as the server runs it, and returns its address.
func agentListener(t *testing.T, g *Gateway, ca *testCA) string {
	t.Helper()
	srvCert, _ := ca.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "gateway"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	cfg := g.TLSConfig(&tls.Config{Certificates: []tls.Certificate{srvCert}, ClientCAs: pool, MinVersion: tls.VersionTLS12})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: g, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(g.Listener(ln, cfg))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func clientTLS(ca *testCA, cert tls.Certificate) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	// Presented whatever CAs the server names, as a client probing the
	// gateway would (crypto/tls would otherwise send none at all).
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
}

// refusedFor waits for a device.refused entry with reason.
func refusedFor(t *testing.T, au *fakeAuditor, reason string) audit.Entry {
	t.Helper()
	var found audit.Entry
	waitFor(t, "device.refused: "+reason, func() bool {
		for _, e := range au.of(audit.DeviceRefused) {
			if e.Details["reason"] == reason {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// TestHandshakeAndUpgradeRefusals drives real TLS handshakes through the
// gateway's listener: each refused certificate is audited with why, and
// a device that is not active is refused at the upgrade.
func TestHandshakeAndUpgradeRefusals(t *testing.T) {
	ca, stranger := newTestCA(t, "device CA"), newTestCA(t, "another CA")
	st, au := newFakeStore(), &fakeAuditor{}
	g := newGateway(t, st, au)
	addr := agentListener(t, g, ca)
	url := "https://" + addr + protocol.GatewayPath
	get := func(cert tls.Certificate) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: clientTLS(ca, cert)}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	foreign, _ := stranger.validDevice(t, testDevice)
	expired, expiredLeaf := ca.device(t, testDevice, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))
	st.enroll(testDevice, expiredLeaf, false)
	revoked, revokedLeaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, revokedLeaf, true)
	unknown, _ := ca.validDevice(t, testDevice)
	for _, c := range []struct {
		name   string
		cert   tls.Certificate
		reason string
	}{
		{"another CA's certificate", foreign, "certificate not issued by this server's CA"},
		{"an expired certificate", expired, "certificate expired or not yet valid"},
		{"a revoked certificate", revoked, "certificate revoked"},
		{"a certificate never issued", unknown, "certificate was not issued to an enrolled device"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if code, err := get(c.cert); err == nil {
				t.Fatalf("the handshake succeeded (%d)", code)
			}
			if e := refusedFor(t, au, c.reason); e.Actor != "device:"+testDevice {
				t.Fatalf("refusal audited as %q, want the presented device", e.Actor)
			}
		})
	}

	// The certificate is good, the device is not active: 403 at the upgrade.
	const gone = "0a0b0c0d-0000-4000-8000-000000000002"
	goneCert, goneLeaf := ca.validDevice(t, gone)
	st.enroll(gone, goneLeaf, false)
	st.mu.Lock()
	st.devices[gone].Status = store.StatusRevoked
	st.mu.Unlock()
	if code, err := get(goneCert); err != nil || code != http.StatusForbidden {
		t.Fatalf("a revoked device: %d %v, want 403", code, err)
	}
	refusedFor(t, au, "device revoked")
	const never = "0a0b0c0d-0000-4000-8000-000000000003"
	neverCert, neverLeaf := ca.validDevice(t, never)
	st.enroll(never, neverLeaf, false)
	st.mu.Lock()
	delete(st.devices, never)
	st.mu.Unlock()
	if code, err := get(neverCert); err != nil || code != http.StatusForbidden {
		t.Fatalf("a device not enrolled: %d %v, want 403", code, err)
	}
	refusedFor(t, au, "device is not enrolled")
	st.mu.Lock()
	n := st.connected
	st.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d refused devices marked connected", n)
	}

	// And a good one gets through to the channel.
	good, goodLeaf := ca.validDevice(t, testDevice)
	st.enroll(testDevice, goodLeaf, false)
	ws, _, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 5 * time.Second},
		"wss://"+addr+protocol.GatewayPath, clientTLS(ca, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	p := newPeer(t, ws)
	p.hello(protocol.CurrentCapabilityVersion, protocol.AgentCapabilities...)
	conns := au.of(audit.DeviceConnected)
	if len(conns) != 1 || conns[0].Details["serial"] != identity.Serial(goodLeaf.SerialNumber) {
		t.Fatalf("device.connected entries %+v", conns)
	}
}
