package attest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/cordon-mdm/cordon/attest"
	"github.com/cordon-mdm/cordon/attest/attesttest"
)

func keyPair(t testing.TB) (*ecdsa.PrivateKey, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k, attesttest.Public(attest.KeyTemplate(), &k.PublicKey)
}

// TestVerifyCertifyRefusesWhatNoTPMMade: the structure checks that a
// TPM's real output (the swtpm tests) never exercises.
func TestVerifyCertifyRefusesWhatNoTPMMade(t *testing.T) {
	_, ak := attesttest.SoftAK()
	key, keyPub := keyPair(t)
	nonce := []byte("0123456789abcdef0123456789abcdef")
	good := attesttest.Certify(ak, tpm2.TPMGeneratedValue, tpm2.TPMSTAttestCertify, keyPub, nonce)
	if err := attest.VerifyCertify(&ak.PublicKey, good, nonce, &key.PublicKey); err != nil {
		t.Fatalf("a well-formed certification: %v", err)
	}
	notSigning := attest.KeyTemplate()
	notSigning.ObjectAttributes.FixedTPM = false
	_, loose := keyPair(t)
	looseArea, _ := tpm2.Unmarshal[tpm2.TPMTPublic](loose)
	looseArea.ObjectAttributes = notSigning.ObjectAttributes
	loose = tpm2.Marshal(*looseArea)
	// Flipped, not set: a byte set to a fixed value is unchanged once in
	// 256 runs (the info holds the random clock fields).
	tampered := bytes.Clone(good.CertifyInfo)
	tampered[len(tampered)-1] ^= 0xff
	for name, c := range map[string]struct {
		cert attest.Certification
		want error
	}{
		"wrong magic":       {attesttest.Certify(ak, 0x12345678, tpm2.TPMSTAttestCertify, keyPub, nonce), attest.ErrEvidence},
		"not a certify":     {attesttest.Certify(ak, tpm2.TPMGeneratedValue, tpm2.TPMSTAttestQuote, keyPub, nonce), attest.ErrEvidence},
		"exportable key":    {attesttest.Certify(ak, tpm2.TPMGeneratedValue, tpm2.TPMSTAttestCertify, loose, nonce), attest.ErrOtherKey},
		"trailing bytes":    {attest.Certification{CertifyInfo: good.CertifyInfo, Signature: good.Signature, KeyPublic: append(bytes.Clone(keyPub), 0)}, attest.ErrEvidence},
		"tampered info":     {attest.Certification{CertifyInfo: tampered, Signature: good.Signature, KeyPublic: keyPub}, attest.ErrSignature},
		"garbage signature": {attest.Certification{CertifyInfo: good.CertifyInfo, Signature: []byte{0, 0x18}, KeyPublic: keyPub}, attest.ErrEvidence},
	} {
		if err := attest.VerifyCertify(&ak.PublicKey, c.cert, nonce, &key.PublicKey); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestCheckAKAndEK(t *testing.T) {
	ak, _ := attesttest.SoftAK()
	if _, _, err := attest.CheckAK(ak); err != nil {
		t.Fatalf("an AK of the template: %v", err)
	}
	// The identity key's template is not restricted: it could sign a
	// forged TPMS_ATTEST, so it is no AK.
	_, keyPub := keyPair(t)
	if _, _, err := attest.CheckAK(keyPub); !errors.Is(err, attest.ErrEvidence) {
		t.Errorf("an unrestricted key as AK: %v", err)
	}
	ek := attesttest.SoftEK()
	if got, err := attest.CheckEK(ek, nil, nil); err != nil || got.Certified || len(got.Hash) != 64 {
		t.Fatalf("a standard EK without a certificate: %+v %v", got, err)
	}
	// An EK area that is not the standard template (here: no policy, so
	// usable without the endorsement hierarchy's authorisation).
	area, _ := tpm2.Unmarshal[tpm2.TPMTPublic](ek)
	area.AuthPolicy = tpm2.TPM2BDigest{}
	if _, err := attest.CheckEK(tpm2.Marshal(*area), nil, nil); !errors.Is(err, attest.ErrEvidence) {
		t.Errorf("a non-standard EK: %v", err)
	}
	if _, err := attest.CheckEK(ek, []byte("not DER"), nil); !errors.Is(err, attest.ErrEKCert) {
		t.Errorf("a garbage EK certificate: %v", err)
	}
}

// The decoders of untrusted TPM structures: nothing panics, and what is
// accepted is what the rules say.

func FuzzCheckAK(f *testing.F) {
	ak, _ := attesttest.SoftAK()
	f.Add(ak)
	f.Add(tpm2.Marshal(attest.KeyTemplate()))
	f.Add([]byte{0, 0x23, 0, 0x0b})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, _, err := attest.CheckAK(b)
		if err != nil {
			return
		}
		if a := p.ObjectAttributes; !a.Restricted || !a.SignEncrypt || a.Decrypt || !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin {
			t.Fatalf("accepted an AK with attributes %+v", a)
		}
		if !bytes.Equal(tpm2.Marshal(p), b) {
			t.Fatal("accepted an AK that does not re-encode to its bytes")
		}
	})
}

func FuzzCheckEK(f *testing.F) {
	f.Add(attesttest.SoftEK(), []byte(nil))
	f.Add(tpm2.Marshal(tpm2.ECCEKTemplate), []byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Fuzz(func(t *testing.T, pub, cert []byte) {
		ek, err := attest.CheckEK(pub, cert, nil)
		if err == nil && (ek.Certified || ek.Public == nil) {
			t.Fatalf("CheckEK without roots: %+v", ek)
		}
	})
}

func FuzzVerifyCertify(f *testing.F) {
	_, ak := attesttest.SoftAK()
	key, keyPub := keyPair(f)
	nonce := []byte("nonce")
	good := attesttest.Certify(ak, tpm2.TPMGeneratedValue, tpm2.TPMSTAttestCertify, keyPub, nonce)
	f.Add(good.CertifyInfo, good.Signature, good.KeyPublic, nonce)
	f.Add([]byte{0xff, 0x54, 0x43, 0x47}, []byte{0, 0x18, 0, 0x0b}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, info, sig, pub, n []byte) {
		err := attest.VerifyCertify(&ak.PublicKey, attest.Certification{CertifyInfo: info, Signature: sig, KeyPublic: pub}, n, &key.PublicKey)
		if err != nil {
			return
		}
		a, perr := attest.ParseAttest(info)
		if perr != nil || !bytes.Equal(a.ExtraData.Buffer, n) || a.Type != tpm2.TPMSTAttestCertify {
			t.Fatalf("accepted a certification that is not over its nonce: %v", perr)
		}
	})
}
