package keystore

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/cordon-mdm/cordon/attest"
	"github.com/cordon-mdm/cordon/internal/swtpm/swtpmtest"
)

// serverSide is what the enrollment server does with Evidence: check the
// EK and AK, make the credential (attest.MakeCredential, the FIPS-safe
// one) and a nonce.
func serverSide(t *testing.T, e *Evidence, roots *x509.CertPool) (ek *attest.EK, ak *ecdsa.PublicKey, cred, enc, secret, nonce []byte) {
	t.Helper()
	ek, err := attest.CheckEK(e.EKPublic, e.EKCert, roots)
	if err != nil {
		t.Fatalf("CheckEK: %v", err)
	}
	akArea, akPub, err := attest.CheckAK(e.AKPublic)
	if err != nil {
		t.Fatalf("CheckAK: %v", err)
	}
	name, err := attest.Name(akArea)
	if err != nil {
		t.Fatal(err)
	}
	secret, nonce = make([]byte, 32), make([]byte, 32)
	rand.Read(secret)
	rand.Read(nonce)
	cred, enc, err = attest.MakeCredential(rand.Reader, ek.Public, name, secret)
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	return ek, akPub.(*ecdsa.PublicKey), cred, enc, secret, nonce
}

// TestAttestationRoundTripInARealTPM runs both halves against swtpm: the
// TPM activates the software-made credential (so MakeCredential is what
// TPM2_MakeCredential would make, in the FIPS build too) and the
// certification verifies; with the EK certificate in NV and its root
// given, the EK is certified.
func TestAttestationRoundTripInARealTPM(t *testing.T) {
	sim := swtpmtest.Start(t)
	ca := swtpmtest.NewEKCA(t)
	ca.Provision(t, sim)
	ks := newTPMStore(t, sim)
	signer, err := ks.Signer()
	if err != nil {
		t.Fatal(err)
	}
	e, err := ks.Evidence()
	if err != nil {
		t.Fatalf("Evidence: %v", err)
	}
	if len(e.EKCert) == 0 {
		t.Fatal("the EK certificate written to NV was not read")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	ek, ak, cred, enc, secret, nonce := serverSide(t, e, roots)
	if !ek.Certified {
		t.Fatal("EK certificate from the test root not taken as certified")
	}
	got, c, err := e.Answer(cred, enc, nonce)
	if err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if string(got) != string(secret) {
		t.Fatal("ActivateCredential yielded another secret")
	}
	want := signer.Public().(*ecdsa.PublicKey)
	if err := attest.VerifyCertify(ak, c, nonce, want); err != nil {
		t.Fatalf("VerifyCertify: %v", err)
	}
	// Without roots the same EK is not certified, and without the cert
	// neither; another root refuses the certificate.
	if ek, err := attest.CheckEK(e.EKPublic, e.EKCert, nil); err != nil || ek.Certified {
		t.Fatalf("no roots: certified=%v err=%v", ek != nil && ek.Certified, err)
	}
	other := x509.NewCertPool()
	other.AddCert(swtpmtest.NewEKCA(t).Cert)
	if _, err := attest.CheckEK(e.EKPublic, e.EKCert, other); !errors.Is(err, attest.ErrEKCert) {
		t.Fatalf("another root: %v, want ErrEKCert", err)
	}

	// Each refusal the server must make, on real TPM output.
	if err := attest.VerifyCertify(ak, c, []byte("another nonce"), want); !errors.Is(err, attest.ErrWrongNonce) {
		t.Errorf("wrong nonce: %v", err)
	}
	otherKey, _ := ecdsa.GenerateKey(want.Curve, rand.Reader)
	if err := attest.VerifyCertify(ak, c, nonce, &otherKey.PublicKey); !errors.Is(err, attest.ErrOtherKey) {
		t.Errorf("CSR key not the certified key: %v", err)
	}
	if err := attest.VerifyCertify(&otherKey.PublicKey, c, nonce, want); !errors.Is(err, attest.ErrSignature) {
		t.Errorf("signed by another AK: %v", err)
	}
}

// TestAKOfAnotherTPMDoesNotActivate: a credential made for an AK under
// one TPM's EK cannot be activated by another TPM, so an AK from another
// TPM (or a software key dressed as one) never yields the secret.
func TestAKOfAnotherTPMDoesNotActivate(t *testing.T) {
	a, b := swtpmtest.Start(t), swtpmtest.Start(t)
	ksA, ksB := newTPMStore(t, a), newTPMStore(t, b)
	for _, ks := range []TPM{ksA, ksB} {
		if _, err := ks.Signer(); err != nil {
			t.Fatal(err)
		}
	}
	eA, err := ksA.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	eB, err := ksB.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	// The credential is for B's AK, under A's EK: A cannot activate it
	// (B's AK does not load in A), and B cannot (A's EK is not B's).
	mixed := &Evidence{EKPublic: eA.EKPublic, AKPublic: eB.AKPublic}
	_, _, cred, enc, _, nonce := serverSide(t, mixed, nil)
	if _, _, err := eB.Answer(cred, enc, nonce); err == nil {
		t.Fatal("TPM B activated a credential made for A's EK")
	}
	if _, _, err := eA.Answer(cred, enc, nonce); err == nil {
		t.Fatal("TPM A activated a credential naming B's AK")
	}
}
