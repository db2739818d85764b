package appletest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// APNs is a recording stand-in for Apple's push gateway: it speaks
// HTTP/2 over TLS as APNs does, answers every push 200, and keeps what it
// was sent.
type APNs struct {
	Server *httptest.Server
	mu     sync.Mutex
	pushes []Push
}

// Push is one push APNs received.
type Push struct {
	Token string // the device's push token, hex
	Topic string // the apns-topic header, when the sender set one
	Body  string // {"mdm":"<push magic>"}
	// Client is the certificate the push was sent with.
	Client *x509.Certificate
}

// NewAPNs starts the recording gateway, closed with t.
func NewAPNs(t testing.TB) *APNs {
	t.Helper()
	a := &APNs{}
	a.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p := Push{Token: strings.TrimPrefix(r.URL.Path, "/3/device/"), Topic: r.Header.Get("apns-topic"), Body: string(b)}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			p.Client = r.TLS.PeerCertificates[0]
		}
		a.mu.Lock()
		a.pushes = append(a.pushes, p)
		a.mu.Unlock()
		w.Header().Set("apns-id", "00000000-0000-0000-0000-000000000001")
		w.WriteHeader(http.StatusOK)
	}))
	a.Server.EnableHTTP2 = true
	// APNs authenticates the sender by its push certificate.
	a.Server.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	a.Server.StartTLS()
	t.Cleanup(a.Server.Close)
	return a
}

// URL is the gateway's base URL, for WithAPNs.
func (a *APNs) URL() string { return a.Server.URL }

// Roots trusts the gateway's certificate.
func (a *APNs) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(a.Server.Certificate())
	return p
}

// Reset forgets what the gateway received so far.
func (a *APNs) Reset() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pushes = nil
}

// Pushes returns what the gateway received, oldest first.
func (a *APNs) Pushes() []Push {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Push(nil), a.pushes...)
}

// Topic is the APNs topic the fake devices check in with.
const Topic = "com.apple.mgmt.External.test"

// oidUID is the subject attribute Apple puts an MDM push certificate's
// topic in.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// PushCert returns a PEM certificate and key shaped like the APNs push
// certificate Apple issues an agency (its topic in the subject's UID),
// valid for validFor from now, self-signed: the recording gateway takes
// any client certificate.
func PushCert(t testing.TB, topic string, validFor time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	name := pkix.Name{CommonName: "APSP:" + topic, ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: name, Issuer: name,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validFor),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}
