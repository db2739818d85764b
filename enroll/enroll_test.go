package enroll

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
)

// refusingStore knows no token: any request that reaches it is refused
// as the real store would refuse an unknown token.
type refusingStore struct{ redeemed int }

func (s *refusingStore) CreateToken(context.Context, Token) error { return nil }
func (s *refusingStore) Redeem(context.Context, string, []byte, func(Token) (*Enrollment, error)) error {
	s.redeemed++
	return ErrUnknownToken
}

type events []Event

func (e *events) Record(_ context.Context, ev Event) error { *e = append(*e, ev); return nil }

func csrPEM(t testing.TB) string {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

func post(s *Service, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, protocol.EnrollPath, strings.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestRefusalsAreClearAndAudited(t *testing.T) {
	st := &refusingStore{}
	var ev events
	s := New(st, nil, &ev)
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
		if e.Action != ActionRefused || e.Outcome != "denied" || e.Details["reason"] == "" {
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
	s := New(&refusingStore{}, nil, &ev)
	for _, req := range []TokenRequest{{TTL: time.Second}, {TTL: 365 * 24 * time.Hour}, {Uses: -1}} {
		if _, _, err := s.CreateToken(context.Background(), req, "t", "local"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v", req, err)
		}
	}
	text, exp, err := s.CreateToken(context.Background(), TokenRequest{}, "t", "local")
	if err != nil || !strings.HasPrefix(text, "cdt_") || time.Until(exp) < 23*time.Hour {
		t.Fatalf("default token: %q %v %v", text, exp, err)
	}
	if len(ev) != 1 || strings.Contains(ev[0].Target, text) {
		t.Fatalf("audit %+v", ev)
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
		rec := post(New(&refusingStore{}, nil, &ev), body)
		if rec.Code < 400 || rec.Code >= 500 {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if len(ev) != 1 {
			t.Fatalf("%d audit events", len(ev))
		}
	})
}
