package apple

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

// testCA makes a root and a leaf it signed, as the server's CA and TLS
// certificate would be.
func testCA(t *testing.T) (root, leaf *x509.Certificate, key *ecdsa.PrivateKey) {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rt := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, rt, rt, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(der)
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	lt := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "console.example"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, DNSNames: []string{"console.example"}}
	der, err = x509.CreateCertificate(rand.Reader, lt, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return root, leaf, key
}

func TestEnrollmentProfile(t *testing.T) {
	root, _, _ := testCA(t)
	b, err := EnrollmentProfile(EnrollmentOptions{Host: "console.example:8443", Root: root, Challenge: "chal-1",
		Topic: "com.apple.mgmt.External.x", Organization: "Agency", UUID: counter()})
	if err != nil {
		t.Fatal(err)
	}
	doc := decode(t, b)
	if doc["PayloadType"] != "Configuration" || doc["PayloadOrganization"] != "Agency" || doc["PayloadScope"] != "System" {
		t.Errorf("top level: %v", doc)
	}
	roots := payloads(t, doc, "com.apple.security.root")
	if len(roots) != 1 || !bytes.Equal(roots[0]["PayloadContent"].([]byte), root.Raw) {
		t.Fatalf("root payload: %v", roots)
	}
	sceps := payloads(t, doc, "com.apple.security.scep")
	if len(sceps) != 1 {
		t.Fatalf("%d SCEP payloads", len(sceps))
	}
	sc := sceps[0]["PayloadContent"].(map[string]any)
	for k, want := range map[string]any{"URL": "https://console.example:8443/scep", "Name": "Cordon",
		"Challenge": "chal-1", "Key Type": "RSA"} {
		if sc[k] != want {
			t.Errorf("SCEP %s = %v, want %v", k, sc[k], want)
		}
	}
	if integer(t, sc, "Keysize") != 2048 || integer(t, sc, "Key Usage") != 5 {
		t.Errorf("SCEP key: %v", sc)
	}
	mdms := payloads(t, doc, "com.apple.mdm")
	if len(mdms) != 1 {
		t.Fatalf("%d MDM payloads", len(mdms))
	}
	m := mdms[0]
	for k, want := range map[string]any{"ServerURL": "https://console.example:8443/mdm",
		"CheckInURL": "https://console.example:8443/mdm", "Topic": "com.apple.mgmt.External.x",
		"IdentityCertificateUUID": sceps[0]["PayloadUUID"], "SignMessage": true, "CheckOutWhenRemoved": true} {
		if m[k] != want {
			t.Errorf("MDM %s = %v, want %v", k, m[k], want)
		}
	}
	if integer(t, m, "AccessRights") != 8191 {
		t.Errorf("AccessRights %v", m["AccessRights"])
	}
	uuids := map[any]bool{doc["PayloadUUID"]: true}
	for _, p := range []map[string]any{roots[0], sceps[0], m} {
		uuids[p["PayloadUUID"]] = true
	}
	if len(uuids) != 4 {
		t.Errorf("payload UUIDs are not distinct: %v", uuids)
	}
}

func TestEnrollmentProfileNeedsChallenge(t *testing.T) {
	root, _, _ := testCA(t)
	if _, err := EnrollmentProfile(EnrollmentOptions{Host: "h", Root: root}); err == nil {
		t.Error("a profile without a challenge was rendered")
	}
}

func TestSignedProfileVerifies(t *testing.T) {
	root, leaf, key := testCA(t)
	b, err := EnrollmentProfile(EnrollmentOptions{Host: "h", Root: root, Challenge: "c"})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := Sign(b, leaf, key)
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	if err := p7.VerifyWithChain(pool); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !bytes.Equal(p7.Content, b) {
		t.Error("signed content differs from the profile")
	}
	p7.Content = append(p7.Content, ' ')
	if err := p7.VerifyWithChain(pool); err == nil {
		t.Error("altered content verified")
	}
	other, _, _ := testCA(t)
	pool2 := x509.NewCertPool()
	pool2.AddCert(other)
	if p7b, _ := pkcs7.Parse(signed); p7b.VerifyWithChain(pool2) == nil {
		t.Error("verified against an unrelated root")
	}
}
