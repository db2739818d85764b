// Package appletest is a fake Apple device for tests: it speaks the
// device side of Apple's check-in and command protocol as nanomdm's
// test/enrollment does, but with an identity certificate Cordon's CA
// issued (through /scep with Enrolled, as a real device gets it, or
// straight from the CA with IssuedBy) and SHA-256 signatures (that package signs with a self-signed
// RSA key and SHA-1, which a FIPS 140 build refuses).
package appletest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/micromdm/plist"
	"github.com/smallstep/pkcs7"

	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/server/applemdm"
)

// CA signs the device's identity (*pki.CA); SCEP's job on a real device.
type CA = testbed.Signer

// Device is one fake iPhone, iPad or Mac.
type Device struct {
	URL         string       // the server's /mdm
	Client      *http.Client // http.DefaultClient unless set
	UDID        string
	ProductName string // iPhone15,2, iPad13,1, Mac14,2
	Cert        *x509.Certificate
	Key         crypto.Signer
	Digest      asn1.ObjectIdentifier // SHA-256 unless set
}

// IssuedBy returns a device whose identity certificate ca signed for
// the device id its UDID derives.
func IssuedBy(t testing.TB, ca CA, url, udid, productName string) *Device {
	t.Helper()
	return IssuedFor(t, ca, url, udid, productName, applemdm.DeviceID(udid))
}

// IssuedFor returns a device holding an identity certificate ca signed
// for deviceID (an agent's, say), whatever its UDID.
func IssuedFor(t testing.TB, ca CA, url, udid, productName, deviceID string) *Device {
	t.Helper()
	cert, key := testbed.DeviceCert(t, ca, deviceID)
	return &Device{URL: url, UDID: udid, ProductName: productName, Cert: cert, Key: key}
}

// put sends msg signed in an Mdm-Signature header and returns the status.
func (d *Device) put(t testing.TB, msg any, checkin bool) int {
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
	if d.Digest != nil {
		sd.SetDigestAlgorithm(d.Digest)
	}
	if err := sd.AddSigner(d.Cert, d.Key, pkcs7.SignerInfoConfig{}); err != nil {
		t.Fatal(err)
	}
	sd.Detach()
	sig, err := sd.Finish()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, d.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if checkin {
		req.Header.Set("Content-Type", "application/x-apple-aspen-mdm-checkin")
	}
	req.Header.Set("Mdm-Signature", base64.StdEncoding.EncodeToString(sig))
	client := d.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Authenticate sends the Authenticate check-in a device sends first,
// naming itself name, and returns the HTTP status.
func (d *Device) Authenticate(t testing.TB, name string) int {
	return d.put(t, map[string]string{"MessageType": "Authenticate", "UDID": d.UDID, "Topic": "com.apple.mgmt.External.test",
		"SerialNumber": "SER-" + d.UDID[:6], "DeviceName": name, "ProductName": d.ProductName, "OSVersion": "17.4",
		"BuildVersion": "21E219", "Model": "MQ9T3LL/A"}, true)
}

// TokenUpdate sends the TokenUpdate that completes an enrollment.
func (d *Device) TokenUpdate(t testing.TB) int {
	return d.put(t, map[string]any{"MessageType": "TokenUpdate", "UDID": d.UDID, "Topic": "com.apple.mgmt.External.test",
		"Token": []byte("push-token-" + d.UDID), "PushMagic": "magic-" + d.UDID}, true)
}

// Idle asks for the next command, as a device does after a push.
func (d *Device) Idle(t testing.TB) int {
	return d.put(t, map[string]string{"UDID": d.UDID, "Status": "Idle"}, false)
}
