package devices

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// dropped records the connections revocation closed: the live connection
// is the gateway's, which these tests do not run.
type dropped struct {
	mu    sync.Mutex
	calls map[string]int
}

func (d *dropped) Disconnect(deviceID string, code int, _ string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.calls == nil {
		d.calls = map[string]int{}
	}
	d.calls[deviceID] = code
}

func (d *dropped) code(deviceID string) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.calls[deviceID]
	return c, ok
}

type env struct {
	st   *store.Store
	log  *audit.Log
	ca   *pki.CA
	drop *dropped
	svc  *Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, st, ca := testbed.StoreAndCA(t)
	e := &env{st: st, log: audit.New(st, nil), ca: ca, drop: &dropped{}}
	e.svc = New(st, e.log, ca, e.drop)
	return e
}

// enroll records device id for owner with a certificate the CA signed,
// as an enrollment does, and returns the certificate.
func (e *env) enroll(t *testing.T, id, owner string) *x509.Certificate {
	t.Helper()
	if err := e.st.DB().Create(Enrolled(id, owner, protocol.DeviceFacts{Hostname: "host-" + id, Platform: "linux"}, time.Now())).Error; err != nil {
		t.Fatal(err)
	}
	return e.certify(t, e.ca, id)
}

// certify records a certificate ca signs for device id (a renewal).
func (e *env) certify(t *testing.T, ca *pki.CA, id string) *x509.Certificate {
	t.Helper()
	cert, _ := testbed.DeviceCert(t, ca, id)
	if err := e.st.AddCertificate(context.Background(), store.CertificateFor(id, cert)); err != nil {
		t.Fatal(err)
	}
	return cert
}

func (e *env) revokedEntries(t *testing.T, deviceID string) []map[string]string {
	t.Helper()
	es, err := e.st.ListAudit(context.Background(), store.AuditQuery{Action: audit.CertRevoked, Target: "device:" + deviceID})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, en := range es {
		d := map[string]string{"outcome": en.Outcome, "actor": en.Actor, "source": en.Source}
		var details map[string]string
		if err := json.Unmarshal([]byte(en.Details), &details); err != nil {
			t.Fatal(err)
		}
		for k, v := range details {
			d[k] = v
		}
		out = append(out, d)
	}
	return out
}

func (e *env) onCRL(t *testing.T, c *x509.Certificate) bool {
	t.Helper()
	der, err := e.ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range crl.RevokedCertificateEntries {
		if r.SerialNumber.Cmp(c.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// TestRevokeEverywhere: every certificate of the device (a renewal
// leaves two) is revoked in the store and on the CRL, one audit entry
// each, the device is revoked and its connection dropped; another device
// of the same owner is left alone.
func TestRevokeEverywhere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	first := e.enroll(t, "d1", "officer@agency")
	renewed := e.certify(t, e.ca, "d1")
	other := e.enroll(t, "d2", "officer@agency")
	if err := e.svc.Revoke(ctx, "d1", "lost", "user:laso@agency", "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{first, renewed} {
		rec, err := e.st.GetCertificate(ctx, c.SerialNumber.String())
		if err != nil || !rec.Revoked || rec.Reason != "lost" {
			t.Errorf("certificate %s in the store: %+v, %v; want revoked for lost", c.SerialNumber, rec, err)
		}
		if !e.onCRL(t, c) {
			t.Errorf("certificate %s is not on the CRL", c.SerialNumber)
		}
	}
	if d, err := e.st.GetDevice(ctx, "d1"); err != nil || d.Status != store.StatusRevoked {
		t.Errorf("device d1: %+v, %v; want revoked", d, err)
	}
	entries := e.revokedEntries(t, "d1")
	if len(entries) != 2 {
		t.Fatalf("%d certificate.revoked entries, want one per certificate: %v", len(entries), entries)
	}
	for _, en := range entries {
		if en["outcome"] != audit.Success || en["actor"] != "user:laso@agency" || en["source"] != "10.0.0.5" || en["reason"] != "lost" {
			t.Errorf("entry %v", en)
		}
	}
	if code, ok := e.drop.code("d1"); !ok || code != protocol.CloseRevoked {
		t.Errorf("connection of d1 closed with %d (closed: %v), want %d", code, ok, protocol.CloseRevoked)
	}
	if rec, _ := e.st.GetCertificate(ctx, other.SerialNumber.String()); rec == nil || rec.Revoked || e.onCRL(t, other) {
		t.Errorf("the other device's certificate was revoked too: %+v", rec)
	}
	if _, ok := e.drop.code("d2"); ok {
		t.Error("the other device's connection was dropped")
	}
}

// TestRevokeUnaudited: when the audit trail refuses the entries, the
// revocation does not happen (AU-5): the device stays active, nothing
// reaches the CRL and its connection stays up.
func TestRevokeUnaudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.enroll(t, "d1", "officer@agency")
	if err := e.st.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Revoke(ctx, "d1", "lost", "user:laso@agency", "local"); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Revoke with the trail read-only: %v, want audit.ErrUnavailable", err)
	}
	if rec, err := e.st.GetCertificate(ctx, c.SerialNumber.String()); err != nil || rec.Revoked {
		t.Errorf("certificate revoked without its entry: %+v, %v", rec, err)
	}
	if d, _ := e.st.GetDevice(ctx, "d1"); d.Status != store.StatusActive {
		t.Errorf("device status %q, want it left active", d.Status)
	}
	if e.onCRL(t, c) {
		t.Error("certificate on the CRL without its entry")
	}
	if _, ok := e.drop.code("d1"); ok {
		t.Error("connection dropped although nothing was revoked")
	}
}

// TestRevokeCRLFailure: a certificate the CA cannot put on its CRL (here
// another CA's) leaves the device revoked in the store, which every
// handshake checks; the failure is returned and audited on its own, and
// the connection is dropped all the same.
func TestRevokeCRLFailure(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := pki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e.enroll(t, "d1", "officer@agency")
	foreign := e.certify(t, other, "d1")
	if err := e.svc.Revoke(ctx, "d1", "compromised", "user:laso@agency", "local"); err == nil {
		t.Fatal("Revoke reported success although the CRL refused a certificate")
	}
	if rec, err := e.st.GetCertificate(ctx, foreign.SerialNumber.String()); err != nil || !rec.Revoked {
		t.Errorf("certificate in the store: %+v, %v; want revoked", rec, err)
	}
	var failed []map[string]string
	for _, en := range e.revokedEntries(t, "d1") {
		if en["outcome"] == audit.Failure {
			failed = append(failed, en)
		}
	}
	if len(failed) != 1 || failed[0]["step"] != "crl" || failed[0]["serial"] != foreign.SerialNumber.String() || failed[0]["error"] == "" {
		t.Errorf("failure entries %v, want one for the CRL step of %s", failed, foreign.SerialNumber)
	}
	if _, ok := e.drop.code("d1"); !ok {
		t.Error("connection left up after the store revoked the device")
	}
}

func TestRevokeUnknownDevice(t *testing.T) {
	e := newEnv(t)
	if err := e.svc.Revoke(context.Background(), "nobody", "lost", "user:laso@agency", "local"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Revoke of an unknown device: %v, want store.ErrNotFound", err)
	}
	if _, ok := e.drop.code("nobody"); ok {
		t.Error("connection dropped for an unknown device")
	}
}

// TestEnrolled: the record is named after the reported host, owned by
// the token's owner and active.
func TestEnrolled(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.FixedZone("EST", -5*3600))
	d := Enrolled("d1", "officer@agency", protocol.DeviceFacts{Hostname: "cruiser-12", Platform: "linux",
		OSName: "Ubuntu", OSVersion: "24.04", AgentVersion: "1.2.0", Serial: "SN1"}, at)
	want := store.Device{ID: "d1", Name: "cruiser-12", Hostname: "cruiser-12", Platform: "linux", OSName: "Ubuntu",
		OSVersion: "24.04", AgentVersion: "1.2.0", Serial: "SN1", Owner: "officer@agency", EnrolledAt: at.UTC(), Status: store.StatusActive}
	if d.ID != want.ID || d.Name != want.Name || d.Hostname != want.Hostname || d.Platform != want.Platform ||
		d.OSName != want.OSName || d.OSVersion != want.OSVersion || d.AgentVersion != want.AgentVersion ||
		d.Serial != want.Serial || d.Owner != want.Owner || !d.EnrolledAt.Equal(at) || d.EnrolledAt.Location() != time.UTC || d.Status != want.Status {
		t.Errorf("Enrolled = %+v, want %+v", d, want)
	}
}
