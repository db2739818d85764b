package applemdm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"

	"github.com/cordon-mdm/cordon/pki"
)

// fakeDevice speaks the device side of Apple's check-in and command
// protocol as nanomdm's test/enrollment does, but with an identity
// certificate of the test's choosing and SHA-256 signatures (that
// package signs with a self-signed RSA key and SHA-1, which a FIPS 140
// build refuses).
type fakeDevice struct {
	url         string
	udid        string
	productName string
	cert        *x509.Certificate
	key         crypto.Signer
	digest      asn1.ObjectIdentifier // SHA-256 unless set
}

// issuedBy returns a device whose identity certificate ca signed.
func issuedBy(t *testing.T, ca *pki.CA, url, udid, productName string) *fakeDevice {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := ca.SignDevice(t.Context(), csr, DeviceID(udid))
	if err != nil {
		t.Fatal(err)
	}
	return &fakeDevice{url: url, udid: udid, productName: productName, cert: chain[0], key: key}
}

// put sends msg signed in an Mdm-Signature header and returns the status.
func (d *fakeDevice) put(t *testing.T, msg any, checkin bool) int {
	t.Helper()
	body, err := plist.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := pkcs7.NewSignedData(body)
	if err != nil {
		t.Fatal(err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if d.digest != nil {
		sd.SetDigestAlgorithm(d.digest)
	}
	if err := sd.AddSigner(d.cert, d.key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	sig, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, d.url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if checkin {
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm-checkin")
	}
	req.Header.Set("Mdm-Signature", base64.StdEncoding.EncodeToString(sig))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// authenticate sends the Authenticate check-in a device sends first.
func (d *fakeDevice) authenticate(t *testing.T, name string) int {
	return d.put(t, map[string]string{"MessageType": "Authenticate", "UDID": d.udid, "Topic": "com.apple.mgmt.External.test",
		"SerialNumber": "SER-" + d.udid[:6], "DeviceName": name, "ProductName": d.productName, "OSVersion": "17.4",
		"BuildVersion": "21E219", "Model": "MQ9T3LL/A"}, true)
}

// tokenUpdate sends the TokenUpdate that completes an enrollment.
func (d *fakeDevice) tokenUpdate(t *testing.T) int {
	return d.put(t, map[string]any{"MessageType": "TokenUpdate", "UDID": d.udid, "Topic": "com.apple.mgmt.External.test",
		"Token": []byte("push-token-" + d.udid), "PushMagic": "magic-" + d.udid}, true)
}

// idle asks for the next command, as a device does after a push.
func (d *fakeDevice) idle(t *testing.T) int {
	return d.put(t, map[string]string{"UDID": d.udid, "Status": "Idle"}, false)
}
