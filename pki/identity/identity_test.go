package identity

import (
	"crypto/x509"
	"net/url"
	"testing"
)

func TestDeviceIDRoundTrip(t *testing.T) {
	c := &x509.Certificate{URIs: []*url.URL{{Scheme: "https", Host: "x"}, DeviceURI("5d1c6f4e-0000-4000-8000-000000000001")}}
	id, err := DeviceID(c)
	if err != nil || id != "5d1c6f4e-0000-4000-8000-000000000001" {
		t.Fatalf("DeviceID = %q, %v", id, err)
	}
	if _, err := DeviceID(&x509.Certificate{}); err == nil {
		t.Fatal("certificate without URI accepted")
	}
	if NormalizeFingerprint(" AB:cd-EF ") != "abcdef" {
		t.Fatal("NormalizeFingerprint")
	}
}

func FuzzParseChain(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseChain(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("nil error with no certificates")
		}
	})
}
