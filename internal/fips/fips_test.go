package fips

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/fips140"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		name string
		s    Status
		want string // "" means FIPS mode may run
	}{
		{"ordinary build", Status{Module: "latest"}, "built without GOFIPS140"},
		{"ordinary build with GODEBUG=fips140=on", Status{Module: "latest", Enabled: true}, "built without GOFIPS140"},
		{"FIPS build switched off", Status{Module: "v1.0.0", Build: "v1.0.0-c2097c7c"}, "switched off"},
		{"FIPS build", Status{Module: "v1.0.0", Build: "v1.0.0-c2097c7c", Enabled: true}, ""},
	} {
		err := c.s.Check()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.Is(err, ErrInactive) || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: got %v, want ErrInactive mentioning %q", c.name, err, c.want)
		}
	}
}

func TestLines(t *testing.T) {
	got := strings.Join(Status{Enabled: true, Enforced: true, Module: "v1.0.0", Build: "v1.0.0-c2097c7c", Certified: true}.Lines(), "\n")
	want := "fips140: enabled\nfips140 module: v1.0.0 (GOFIPS140=v1.0.0-c2097c7c, certified)\nfips140 enforcement: only (non-approved algorithms fail)"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	got = strings.Join(Status{Module: "v1.26.0", Build: "inprocess", Enabled: true}.Lines(), "\n")
	if !strings.Contains(got, "not on the certified list") {
		t.Errorf("an in-process module must not read as certified:\n%s", got)
	}
}

// TestCurrentMatchesRuntime ties Current to what the runtime says, in
// whichever build the suite runs (make test-fips runs it in a FIPS one).
func TestCurrentMatchesRuntime(t *testing.T) {
	s := Current()
	if s.Enabled != fips140.Enabled() || s.Module != fips140.Version() || s.Enforced != fips140.Enforced() {
		t.Fatalf("Current() = %+v disagrees with crypto/fips140", s)
	}
	if s.Frozen() != (s.Build != "" && s.Build != "off" && s.Build != "latest") {
		t.Errorf("Frozen() = %v for GOFIPS140=%q", s.Frozen(), s.Build)
	}
	if Default() != s.Frozen() {
		t.Error("FIPS mode must be the default exactly in FIPS builds")
	}
}

// handshake runs one TLS handshake between server and client configs and
// returns the server's error, which is what says why a client was refused.
func handshake(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cordon"},
		DNSNames: []string{"cordon.test"}, NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	server.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
	client.InsecureSkipVerify = true
	client.ServerName = "cordon.test"
	// Loopback TCP rather than net.Pipe: TLS 1.3 has both sides write at
	// once, which an unbuffered pipe deadlocks on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := tls.Dial("tcp", ln.Addr().String(), client)
		if err == nil {
			c.Close()
		}
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	s := tls.Server(conn, server)
	err = s.Handshake()
	return s.ConnectionState(), err
}

func TestFIPSModeTLSRefusesNonApproved(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("with the module enabled Go's own client cannot offer these; TestFIPSBuild in integration/ offers them with OpenSSL")
	}
	for _, c := range []struct {
		name   string
		client *tls.Config
		want   string
	}{
		{"ChaCha20 only", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, "no cipher suite supported"},
		{"TLS 1.1 only", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, "unsupported versions"},
		{"X25519 only, TLS 1.3", &tls.Config{CurvePreferences: []tls.CurveID{tls.X25519}}, "no key exchanges supported"},
		{"X25519 only, TLS 1.2", &tls.Config{MaxVersion: tls.VersionTLS12, CurvePreferences: []tls.CurveID{tls.X25519}}, "no cipher suite supported"},
	} {
		_, err := handshake(t, TLS(true), c.client)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: server error %v, want one mentioning %q", c.name, err, c.want)
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		st, err := handshake(t, TLS(true), &tls.Config{MaxVersion: v})
		if err != nil {
			t.Fatalf("%s: approved client refused: %v", tls.VersionName(v), err)
		}
		if name := tls.CipherSuiteName(st.CipherSuite); !strings.Contains(name, "AES") || !strings.Contains(name, "GCM") {
			t.Errorf("%s: negotiated %s", tls.VersionName(v), name)
		}
		if st.CurveID != tls.CurveP256 {
			t.Errorf("%s: key exchange over %v, want P-256", tls.VersionName(v), st.CurveID)
		}
	}
}

func TestDefaultModeTLS(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("the module restricts every TLS config; this checks the non-FIPS default")
	}
	// ChaCha20 stays available to CPUs without AES instructions...
	st, err := handshake(t, TLS(false), &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}})
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
		t.Errorf("ChaCha20 client: %v, %s", err, tls.CipherSuiteName(st.CipherSuite))
	}
	// ...but nothing below TLS 1.2 and nothing without an AEAD.
	if _, err := handshake(t, TLS(false), &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 client accepted")
	}
	if _, err := handshake(t, TLS(false), &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		t.Error("CBC client accepted")
	}
}
