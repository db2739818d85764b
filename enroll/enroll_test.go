package enroll_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/api"
)

// refusingStore knows no token: any request that reaches it is refused
// as the real store would refuse an unknown token.
type refusingStore struct{ redeemed int }

func (s *refusingStore) CreateToken(context.Context, enroll.Token) error { return nil }
func (s *refusingStore) Redeem(context.Context, string, []byte, string, func(enroll.Token) (*enroll.Enrollment, error)) error {
	s.redeemed++
	return enroll.ErrUnknownToken
}
func (s *refusingStore) CreateChallenge(context.Context, string, []byte, *enroll.Challenge) error {
	return enroll.ErrUnknownToken
}
func (s *refusingStore) Challenge(context.Context, string) (*enroll.Challenge, error) {
	return nil, enroll.ErrAttestReplay
}
func (s *refusingStore) BurnChallenge(context.Context, string) error { return nil }

type events []enroll.Event

func (e *events) Record(_ context.Context, ev enroll.Event) error { *e = append(*e, ev); return nil }

func csrPEM(t testing.TB) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// post sends body to POST /enroll as the server serves it: server/api's
// route, whose statuses come from server/status.
func post(s *enroll.Service, body string, opts ...api.Option) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, protocol.EnrollPath, strings.NewReader(body))
	rec := httptest.NewRecorder()
	api.New(nil, nil, nil, nil, nil, s, opts...).ServeHTTP(rec, req)
	return rec
}

func TestRefusalsAreClearAndAudited(t *testing.T) {
	st := &refusingStore{}
	var ev events
	s := enroll.New(st, nil, &ev)
	good, _ := json.Marshal(protocol.EnrollRequest{Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", CSR: csrPEM(t),
		Facts: protocol.DeviceFacts{Platform: "linux/amd64"}})
	cases := []struct {
		body   string
		status int
		reason string
	}{
		{`{`, 400, "malformed request"},
		{`{"token":"x","csr":"y","facts":{"platform":"p"},"extra":1}`, 400, "malformed request"},
		{`{"token":"","csr":"y","facts":{"platform":"p"}}`, 400, "token is required"},
		{`{"token":"cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","csr":"nope","facts":{"platform":"p"}}`, 400, "certificate request refused"},
		{string(good), 403, "unknown enrollment token"},
	}
	for _, c := range cases {
		rec := post(s, c.body)
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != c.status || !strings.Contains(e.Error, c.reason) {
			t.Errorf("%.40s: %d %q, want %d %q", c.body, rec.Code, e.Error, c.status, c.reason)
		}
	}
	if len(ev) != len(cases) {
		t.Fatalf("%d audit events for %d refusals", len(ev), len(cases))
	}
	for _, e := range ev {
		if e.Action != enroll.ActionRefused || e.Outcome != "denied" || e.Details["reason"] == "" {
			t.Fatalf("audit event %+v", e)
		}
		for _, v := range e.Details {
			if strings.Contains(v, "bbbbbbbb") {
				t.Fatal("token secret written to the audit log")
			}
		}
	}
	if st.redeemed != 1 {
		t.Fatalf("store reached %d times; only the well-formed request may reach it", st.redeemed)
	}
}

func TestCreateTokenValidates(t *testing.T) {
	var ev events
	s := enroll.New(&refusingStore{}, nil, &ev)
	// A zero is refused with the range named, never turned into a default.
	for _, req := range []enroll.TokenRequest{{TTL: time.Second, Uses: 1}, {TTL: 365 * 24 * time.Hour, Uses: 1}, {TTL: enroll.DefaultTTL, Uses: -1},
		{}, {TTL: enroll.DefaultTTL}, {Uses: 1}, {TTL: enroll.DefaultTTL, Uses: 1, Owner: "a\x00b"}} {
		_, _, err := s.CreateToken(context.Background(), req, "t", "local")
		if !errors.Is(err, enroll.ErrInvalid) || !strings.Contains(err.Error(), "between") && !strings.Contains(err.Error(), "owner") {
			t.Errorf("%+v: %v", req, err)
		}
	}
	text, exp, err := s.CreateToken(context.Background(), enroll.TokenRequest{TTL: enroll.DefaultTTL, Uses: enroll.DefaultUses}, "t", "local")
	if err != nil || !strings.HasPrefix(text, "cdt_") || time.Until(exp) < 23*time.Hour {
		t.Fatalf("default token: %q %v %v", text, exp, err)
	}
	if len(ev) != 1 || strings.Contains(ev[0].Target, text) {
		t.Fatalf("audit %+v", ev)
	}
}

func csrWith(t testing.TB, tmpl *x509.CertificateRequest) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// TestIdentityClaimsRefused: a CSR that names an identity is refused and
// audited with a reason that says so; the token is not even looked at.
func TestIdentityClaimsRefused(t *testing.T) {
	other, _ := url.Parse("urn:uuid:6f1c1d2e-1111-4222-8333-444455556666")
	cases := map[string]struct {
		tmpl     x509.CertificateRequest
		hostname string
	}{
		"another device's urn:uuid": {x509.CertificateRequest{URIs: []*url.URL{other}}, "laptop"},
		"a DNS name":                {x509.CertificateRequest{DNSNames: []string{"cordon.agency.gov"}}, "laptop"},
		"an IP":                     {x509.CertificateRequest{IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}, "laptop"},
		"an email":                  {x509.CertificateRequest{EmailAddresses: []string{"laso@agency.gov"}}, "laptop"},
		"a CN not its hostname":     {x509.CertificateRequest{Subject: pkix.Name{CommonName: "cordon.agency.gov"}}, "laptop"},
		"a UUID as hostname and CN": {x509.CertificateRequest{Subject: pkix.Name{CommonName: other.Opaque}}, other.Opaque},
		"the server's name":         {x509.CertificateRequest{Subject: pkix.Name{CommonName: "Cordon.agency.gov"}}, "Cordon.agency.gov"},
		"an organisation":           {x509.CertificateRequest{Subject: pkix.Name{CommonName: "laptop", Organization: []string{"Cordon server"}}}, "laptop"},
	}
	for name, c := range cases {
		st := &refusingStore{}
		var ev events
		s := enroll.New(st, nil, &ev, enroll.WithServerNames("cordon.agency.gov"))
		body, _ := json.Marshal(protocol.EnrollRequest{Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", CSR: csrWith(t, &c.tmpl),
			Facts: protocol.DeviceFacts{Platform: "linux/amd64", Hostname: c.hostname}})
		rec := post(s, string(body))
		if rec.Code != 400 || len(ev) != 1 || ev[0].Action != enroll.ActionRefused || !strings.Contains(ev[0].Details["reason"], "identity claimed") {
			t.Errorf("%s: %d %s, audit %+v", name, rec.Code, rec.Body, ev)
		}
		if st.redeemed != 0 {
			t.Errorf("%s: the token was redeemed", name)
		}
	}
	// What the agent sends, its hostname as the CN, still enrolls as far
	// as the token.
	st := &refusingStore{}
	s := enroll.New(st, nil, &events{}, enroll.WithServerNames("cordon.agency.gov"))
	body, _ := json.Marshal(protocol.EnrollRequest{Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		CSR:   csrWith(t, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "laptop-17.agency.local"}}),
		Facts: protocol.DeviceFacts{Platform: "linux/amd64", Hostname: "laptop-17.agency.local"}})
	if rec := post(s, string(body)); rec.Code != 403 || st.redeemed != 1 {
		t.Errorf("the agent's own CSR: %d %s", rec.Code, rec.Body)
	}
}

type fakeLimiter struct{ fails int }

func (l *fakeLimiter) Allow(string) (bool, time.Duration) {
	return l.fails < 2, 1500 * time.Millisecond
}
func (l *fakeLimiter) Fail(string) { l.fails++ }

func TestGuessesLimited(t *testing.T) {
	st := &refusingStore{}
	lim := &fakeLimiter{}
	s := enroll.New(st, nil, &events{})
	body, _ := json.Marshal(protocol.EnrollRequest{Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", CSR: csrPEM(t),
		Facts: protocol.DeviceFacts{Platform: "linux/amd64"}})
	for i, want := range []int{403, 403, 429, 429} {
		rec := post(s, string(body), api.WithEnrollLimiter(lim))
		if rec.Code != want {
			t.Fatalf("attempt %d: %d, want %d", i+1, rec.Code, want)
		}
		if want == 429 && rec.Header().Get("Retry-After") != "2" {
			t.Fatalf("Retry-After = %q", rec.Header().Get("Retry-After"))
		}
	}
	if st.redeemed != 2 {
		t.Fatalf("a limited guess reached the store (%d)", st.redeemed)
	}
}

// FuzzEnroll feeds arbitrary bodies to POST /enroll: it must answer every
// one with a 4xx and never panic; only well-formed requests reach the store.
func FuzzEnroll(f *testing.F) {
	good, _ := json.Marshal(protocol.EnrollRequest{Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", CSR: csrPEM(f),
		Facts: protocol.DeviceFacts{Platform: "linux/amd64"}})
	f.Add(string(good))
	f.Add(`{"token":"cdt_x","csr":"-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----","facts":{"platform":"x"}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, body string) {
		var ev events
		rec := post(enroll.New(&refusingStore{}, nil, &ev), body)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if len(ev) != 1 {
			t.Fatalf("%d audit events", len(ev))
		}
	})
}
