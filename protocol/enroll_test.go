package protocol

import (
	"bytes"
	"encoding/json"
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
