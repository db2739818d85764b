package applemdm_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/micromdm/nanomdm/storage/diskv"

	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// clock is a settable time for expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func (e *env) pushCertEntries(t *testing.T) []*store.AuditEntry {
	t.Helper()
	var got []*store.AuditEntry
	if err := e.st.WalkAudit(t.Context(), func(a *store.AuditEntry) error {
		if a.Action == applemdm.ActionPushCertStored {
			got = append(got, a)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStorePushCertAuditsAndReportsItsExpiry(t *testing.T) {
	clk := &clock{time.Now()}
	e := newEnv(t, applemdm.WithClock(clk.now))
	if _, err := e.mdm.PushCertStatus(t.Context()); !errors.Is(err, applemdm.ErrNoPushCert) {
		t.Fatalf("status before any upload: %v, want ErrNoPushCert", err)
	}
	if _, err := e.mdm.PushTopic(t.Context()); !errors.Is(err, applemdm.ErrNoPushCert) {
		t.Fatalf("topic before any upload: %v", err)
	}
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	// A second short of 365 days before its expiry (x509 keeps whole
	// seconds, so the clock is set from the certificate, not before it).
	certBlock, _ := pem.Decode(certPEM)
	leaf, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	clk.t = leaf.NotAfter.Add(-365*24*time.Hour + time.Second)
	st, err := e.mdm.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local")
	if err != nil {
		t.Fatal(err)
	}
	if st.Topic != appletest.Topic || st.DaysLeft != 364 || st.Warning || st.Expired || st.Serial == "" {
		t.Fatalf("status after upload %+v", st)
	}
	if topic, err := e.mdm.PushTopic(t.Context()); err != nil || topic != appletest.Topic {
		t.Fatalf("topic %q %v", topic, err)
	}
	// nanopush reads it from nanomdm's own store.
	if c, _, err := diskv.New(e.dir).RetrievePushCert(t.Context(), appletest.Topic); err != nil || c.Leaf.SerialNumber.Text(16) != st.Serial {
		t.Fatalf("nanomdm's store: %v", err)
	}
	entries := e.pushCertEntries(t)
	if len(entries) != 1 || entries[0].Target != "push_cert:"+appletest.Topic || entries[0].Actor != "local:it" ||
		!strings.Contains(entries[0].Details, `"serial":"`+st.Serial+`"`) || !strings.Contains(entries[0].Details, `"topic":"`+appletest.Topic+`"`) ||
		!strings.Contains(entries[0].Details, `"not_after":"`) {
		t.Fatalf("audit %+v", entries)
	}
	block, _ := pem.Decode(keyPEM)
	if err := e.st.WalkAudit(t.Context(), func(a *store.AuditEntry) error {
		if strings.Contains(a.Details, "PRIVATE") || bytes.Contains([]byte(a.Details), block.Bytes[:16]) {
			t.Errorf("the trail holds key material: %s", a.Details)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		at      time.Duration
		days    int
		warning bool
		expired bool
	}{
		{334 * 24 * time.Hour, 30, true, false}, // 30 days ahead: the warning starts
		{333 * 24 * time.Hour, 31, false, false},
		{365*24*time.Hour + time.Minute, -1, true, true},
	} {
		clk.t = time.Now().Add(c.at)
		st, err := e.mdm.PushCertStatus(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.DaysLeft != c.days || st.Warning != c.warning || st.Expired != c.expired {
			t.Errorf("after %v: %+v, want %d days, warning %v, expired %v", c.at, st, c.days, c.warning, c.expired)
		}
	}
}

func TestStorePushCertRefusesWhatCannotPush(t *testing.T) {
	clk := &clock{time.Now()}
	e := newEnv(t, applemdm.WithClock(clk.now))
	good, goodKey := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	_, otherKey := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	expired, expiredKey := appletest.PushCert(t, appletest.Topic, -time.Minute)
	noTopic, noTopicKey := appletest.PushCert(t, "", time.Hour)
	wrongTopic, wrongTopicKey := appletest.PushCert(t, "com.example.push", time.Hour)
	kb, _ := pem.Decode(goodKey)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: kb.Bytes})
	for name, c := range map[string]struct {
		cert, key []byte
		why       string
	}{
		"empty certificate": {nil, goodKey, "certificate file is empty"},
		"empty key":         {good, nil, "key file is empty"},
		"huge certificate":  {append(bytes.Repeat([]byte("a"), applemdm.MaxPushCertPEM), good...), goodKey, "larger than"},
		"no PEM":            {[]byte("not a certificate"), goodKey, "no PEM CERTIFICATE"},
		"key as the cert":   {goodKey, goodKey, "no PEM CERTIFICATE"},
		"cert as the key":   {good, good, "no PEM private key"},
		"encrypted key":     {good, encrypted, "encrypted"},
		"garbled key":       {good, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("xx")}), "does not parse"},
		"another key":       {good, otherKey, "does not match"},
		"no topic":          {noTopic, noTopicKey, "APNs Topic"},
		"not an MDM topic":  {wrongTopic, wrongTopicKey, "com.example.push"},
		"expired":           {expired, expiredKey, "expired"},
	} {
		_, err := e.mdm.StorePushCert(t.Context(), c.cert, c.key, "local:it", "local")
		if !errors.Is(err, applemdm.ErrPushCert) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want ErrPushCert saying %q", name, err, c.why)
		}
	}
	clk.t = time.Now().Add(-2 * time.Hour)
	if _, err := e.mdm.StorePushCert(t.Context(), good, goodKey, "local:it", "local"); !errors.Is(err, applemdm.ErrPushCert) ||
		!strings.Contains(err.Error(), "not valid before") {
		t.Errorf("not yet valid: %v", err)
	}
	if _, err := e.mdm.PushCertStatus(t.Context()); !errors.Is(err, applemdm.ErrNoPushCert) {
		t.Errorf("after refusals: %v, want nothing stored", err)
	}
	if got := e.pushCertEntries(t); len(got) != 0 {
		t.Errorf("refusals audited as stored: %+v", got)
	}
	// A combined file (openssl pkcs12 -nodes: key, then certificate) is
	// both files.
	clk.t = time.Now()
	both := append(append([]byte("Bag Attributes\n"), goodKey...), good...)
	if _, err := e.mdm.StorePushCert(t.Context(), both, both, "local:it", "local"); err != nil {
		t.Errorf("combined file: %v", err)
	}
	// Apple's certificates are RSA, their keys often in PKCS #1.
	rsaCert, rsaKey := rsaPushCert(t)
	if st, err := e.mdm.StorePushCert(t.Context(), rsaCert, rsaKey, "local:it", "local"); err != nil || st.Topic != appletest.Topic {
		t.Errorf("RSA pair with a PKCS #1 key: %+v %v", st, err)
	}
}

func rsaPushCert(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	uid := asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	name := pkix.Name{CommonName: "APSP:" + appletest.Topic, ExtraNames: []pkix.AttributeTypeAndValue{{Type: uid, Value: appletest.Topic}}}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: name, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

// brokenTrail fails every append, as a full disk would.
type brokenTrail struct{}

func (brokenTrail) RecordTx(context.Context, audit.Appender, audit.Entry) error {
	return audit.ErrUnavailable
}

func TestNoTrailNoPushCert(t *testing.T) {
	e := newEnv(t)
	certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
	certs, err := applemdm.NewPushCerts(e.dir, nil, e.st, brokenTrail{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.Store(t.Context(), certPEM, keyPEM, "local:it", "local"); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("store without a trail: %v", err)
	}
	if _, err := e.mdm.PushCertStatus(t.Context()); !errors.Is(err, applemdm.ErrNoPushCert) {
		t.Fatalf("status: %v, want nothing stored", err)
	}
	if _, _, err := diskv.New(e.dir).RetrievePushCert(t.Context(), appletest.Topic); err == nil {
		t.Fatal("nanomdm's store holds the certificate the trail did not record")
	}
}

// TestARenewedCertPushesWithoutRestart: the host command writes from its
// own process; the server's next push presents the new certificate.
func TestARenewedCertPushesWithoutRestart(t *testing.T) {
	apns := appletest.NewAPNs(t)
	e := newEnv(t, applemdm.WithAPNs(apns.URL(), apns.Roots()))
	_, id := e.enrolled(t, "00008110-000A1B2C3D4E5F60")
	host, err := applemdm.NewPushCerts(e.dir, nil, e.st, audit.New(e.st, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for range 2 {
		certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
		st, err := host.Store(t.Context(), certPEM, keyPEM, "local:it", "local")
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, st.Serial)
		if err := e.mdm.Send(t.Context(), id, applemdm.Command{RequestType: "DeviceInformation", Ref: st.Serial}); err != nil {
			t.Fatal(err)
		}
	}
	pushes := apns.Pushes()
	if len(pushes) != 2 || pushes[0].Client.SerialNumber.Text(16) != serials[0] || pushes[1].Client.SerialNumber.Text(16) != serials[1] {
		t.Fatalf("pushes %+v, want one with each certificate %v", pushes, serials)
	}
}
