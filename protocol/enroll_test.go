package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/input"
)

// FuzzChallengeRequest: the attestation challenge body, through the
// decoding every edge uses; what is accepted keeps the bounds.
func FuzzChallengeRequest(f *testing.F) {
	good, _ := json.Marshal(ChallengeRequest{Token: "cdt_a_b", EKPublic: []byte{1, 2}, AKPublic: []byte{3}, EKCert: []byte{4}})
	f.Add(good)
	f.Add([]byte(`{"token":"t","ek_public":"!!","ak_public":"AA=="}`))
	f.Add([]byte(`{"token":"t","ek_public":"AA==","ak_public":"AA==","ek_cert":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r ChallengeRequest
		if err := input.DecodeJSON(bytes.NewReader(b), &r, 64<<10); err != nil {
			return
		}
		if r.Token == "" || len(r.EKPublic) == 0 || len(r.AKPublic) == 0 || len(r.EKPublic) > MaxTPMStructure ||
			len(r.AKPublic) > MaxTPMStructure || len(r.EKCert) > MaxEKCert {
			t.Fatalf("accepted %+v", r)
		}
	})
}

// FuzzEnrollAttestation: an enrollment with an attestation answer.
func FuzzEnrollAttestation(f *testing.F) {
	good, _ := json.Marshal(EnrollRequest{Token: "t", CSR: "c", Facts: DeviceFacts{Platform: "linux/amd64"},
		Attestation: &Attestation{ChallengeID: "id", Secret: []byte{1}, CertifyInfo: []byte{2}, Signature: []byte{3}, KeyPublic: []byte{4}}})
	f.Add(good)
	f.Add([]byte(`{"token":"t","csr":"c","facts":{"platform":"p"},"attestation":{}}`))
	f.Add([]byte(`{"token":"t","csr":"c","facts":{"platform":"p"},"attestation":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r EnrollRequest
		if err := input.DecodeJSON(bytes.NewReader(b), &r, 64<<10); err != nil || r.Attestation == nil {
			return
		}
		a := r.Attestation
		if a.ChallengeID == "" || len(a.Secret) == 0 || len(a.Secret) > 64 || len(a.CertifyInfo) == 0 ||
			len(a.CertifyInfo) > MaxTPMStructure || len(a.Signature) == 0 || len(a.KeyPublic) == 0 {
			t.Fatalf("accepted %+v", a)
		}
	})
}

// FuzzEnrollFile: the enrollment file an agent package carries, through
// the decoding every edge uses; what is accepted is an https server, a
// pinned fingerprint and a token.
func FuzzEnrollFile(f *testing.F) {
	good, _ := json.Marshal(EnrollFile{Server: "https://cordon.example:8443", Token: "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
		CAFingerprint: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"})
	f.Add(good)
	f.Add([]byte(`{"server":"http://x:1","ca_fingerprint":"","token":"t"}`))
	f.Add([]byte(`{"server":"https://u@x:1/p?q","ca_fingerprint":"zz","token":"t","extra":1}`))
	f.Add([]byte(`{"server":"https://x","ca_fingerprint":"AB:CD","token":"t"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var e EnrollFile
		if err := input.DecodeJSON(bytes.NewReader(b), &e, MaxEnrollFile); err != nil {
			return
		}
		if !strings.HasPrefix(e.Server, "https://") || e.Token == "" || len(e.Token) > 256 || len(e.CAFingerprint) < 64 {
			t.Fatalf("accepted %+v", e)
		}
	})
}

func TestEnrollFileCheck(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		f  EnrollFile
		ok bool
	}{
		{EnrollFile{Server: "https://h:8443", CAFingerprint: fp, Token: "cdt_x"}, true},
		{EnrollFile{Server: "https://h:8443/", CAFingerprint: strings.ToUpper(fp), Token: "cdt_x"}, true},
		{EnrollFile{Server: "http://h:8443", CAFingerprint: fp, Token: "cdt_x"}, false},
		{EnrollFile{Server: "https://h:8443/x", CAFingerprint: fp, Token: "cdt_x"}, false},
		{EnrollFile{Server: "https://u:p@h:8443", CAFingerprint: fp, Token: "cdt_x"}, false},
		{EnrollFile{Server: "https://h:8443", CAFingerprint: "", Token: "cdt_x"}, false},
		{EnrollFile{Server: "https://h:8443", CAFingerprint: fp[:62], Token: "cdt_x"}, false},
		{EnrollFile{Server: "https://h:8443", CAFingerprint: fp, Token: ""}, false},
		{EnrollFile{Server: "https://h:8443", CAFingerprint: fp, Token: "cdt\x00x"}, false},
	} {
		if err := tc.f.Check(); (err == nil) != tc.ok {
			t.Errorf("%+v: err %v, want ok=%v", tc.f, err, tc.ok)
		}
	}
}
