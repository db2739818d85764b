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
	"io"
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
	code, _ := d.exchange(t, msg, checkin)
	return code
}

// exchange sends msg signed in an Mdm-Signature header and returns the
// status and the body the server answered with.
func (d *Device) exchange(t testing.TB, msg any, checkin bool) (int, []byte) {
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
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// Authenticate sends the Authenticate check-in a device sends first,
// naming itself name, and returns the HTTP status.
func (d *Device) Authenticate(t testing.TB, name string) int {
	return d.put(t, map[string]string{"MessageType": "Authenticate", "UDID": d.UDID, "Topic": Topic,
		"SerialNumber": "SER-" + d.UDID[:6], "DeviceName": name, "ProductName": d.ProductName, "OSVersion": "17.4",
		"BuildVersion": "21E219", "Model": "MQ9T3LL/A"}, true)
}

// TokenUpdate sends the TokenUpdate that completes an enrollment.
func (d *Device) TokenUpdate(t testing.TB) int {
	return d.put(t, map[string]any{"MessageType": "TokenUpdate", "UDID": d.UDID, "Topic": Topic,
		"Token": []byte("push-token-" + d.UDID), "PushMagic": "magic-" + d.UDID}, true)
}

// CheckOut tells the server the device left management, as it does when
// its user removes the enrollment profile.
func (d *Device) CheckOut(t testing.TB) int {
	return d.put(t, map[string]string{"MessageType": "CheckOut", "UDID": d.UDID, "Topic": Topic}, true)
}

// Idle asks for the next command, as a device does after a push.
func (d *Device) Idle(t testing.TB) int {
	return d.put(t, map[string]string{"UDID": d.UDID, "Status": "Idle"}, false)
}

// Command is an MDM command the server sent the device.
type Command struct {
	UUID        string
	RequestType string
	// Fields are the command's keys, RequestType among them.
	Fields map[string]any
}

// Next connects as after a push (Status Idle) and returns the command
// the server answered with; nil when the queue is empty.
func (d *Device) Next(t testing.TB) *Command {
	t.Helper()
	return d.result(t, map[string]any{"UDID": d.UDID, "Status": "Idle"})
}

// Answer reports status (Acknowledged, Error, NotNow) for the command
// uuid, with the request type's own result keys in extra, and returns
// the next command, nil when there is none.
func (d *Device) Answer(t testing.TB, uuid, status string, extra map[string]any) *Command {
	t.Helper()
	return d.result(t, d.answer(uuid, status, extra))
}

func (d *Device) answer(uuid, status string, extra map[string]any) map[string]any {
	msg := map[string]any{"UDID": d.UDID, "Status": status, "CommandUUID": uuid}
	for k, v := range extra {
		msg[k] = v
	}
	return msg
}

// Settle fetches and acknowledges, with no result keys, every command
// queued for the device (after enrollment: Cordon's profile and the
// first posture queries), so a test of one command meets its own first.
// It returns the request types it acknowledged.
func (d *Device) Settle(t testing.TB) []string {
	t.Helper()
	var done []string
	for c := d.Next(t); c != nil; c = d.Answer(t, c.UUID, "Acknowledged", nil) {
		if len(done) == 64 {
			t.Fatalf("the queue did not empty: %v", done)
		}
		done = append(done, c.RequestType)
	}
	return done
}

// AnswerCode is Answer for a test of the server's refusal: it returns
// the HTTP status and nothing else.
func (d *Device) AnswerCode(t testing.TB, uuid, status string, extra map[string]any) int {
	t.Helper()
	return d.put(t, d.answer(uuid, status, extra), false)
}

func (d *Device) result(t testing.TB, msg map[string]any) *Command {
	t.Helper()
	code, body := d.exchange(t, msg, false)
	if code != http.StatusOK {
		t.Fatalf("command exchange: HTTP %d: %s", code, body)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	var c struct {
		CommandUUID string
		Command     map[string]any
	}
	if err := plist.Unmarshal(body, &c); err != nil {
		t.Fatalf("command from the server: %v\n%s", err, body)
	}
	rt, _ := c.Command["RequestType"].(string)
	return &Command{UUID: c.CommandUUID, RequestType: rt, Fields: c.Command}
}
