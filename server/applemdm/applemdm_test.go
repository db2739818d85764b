package applemdm_test

import (
	"bytes"
	"crypto/fips140"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/smallstep/pkcs7"

	"github.com/cordon-mdm/cordon/internal/testbed"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type env struct {
	st  *store.Store
	ca  *pki.CA
	mdm *applemdm.MDM
	dir string // nanomdm's
	url string
	log *bytes.Buffer
}

// newEnv serves /mdm over a real SQLite store, audit log and CA.
func newEnv(t *testing.T, opts ...applemdm.Option) *env {
	t.Helper()
	return newEnvWith(t, func(*store.Store, *pki.CA, *audit.Log) []applemdm.Option { return opts })
}

// newEnvWith is newEnv with options that need the store, the CA or the
// audit log the MDM writes to (one log, so its chain has one writer).
func newEnvWith(t *testing.T, options func(*store.Store, *pki.CA, *audit.Log) []applemdm.Option) *env {
	t.Helper()
	dir, st, ca := testbed.StoreAndCA(t)
	aud := audit.New(st, nil)
	opts := options(st, ca, aud)
	var logs bytes.Buffer
	h, err := applemdm.New(st, aud, ca, filepath.Join(dir, "apple-mdm"), append(opts, applemdm.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))...)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mdm", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{st: st, ca: ca, mdm: h, dir: filepath.Join(dir, "apple-mdm"), url: srv.URL + "/mdm", log: &logs}
}

// refusedIdentity fails t unless code is nanomdm's answer to a
// signature or certificate that did not verify, for the reason want: 400, never 401, which would make a
// device unenroll itself on a server-side fault.
func (e *env) refusedIdentity(t *testing.T, code int, want string) {
	t.Helper()
	if code != http.StatusBadRequest || !bytes.Contains(e.log.Bytes(), []byte(want)) {
		t.Fatalf("HTTP %d, want 400 from the identity check (%q); log:\n%s", code, want, e.log)
	}
}

// actions returns the audit actions recorded for target, oldest first.
func (e *env) actions(t *testing.T, target string) []string {
	t.Helper()
	var got []string
	if err := e.st.WalkAudit(t.Context(), func(a *store.AuditEntry) error {
		if a.Target == target {
			got = append(got, a.Action)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestCordonIssuedIdentityEnrolls(t *testing.T) {
	e := newEnv(t)
	udid := "00008110-000A1B2C3D4E5F60"
	dev := appletest.IssuedBy(t, e.ca, e.url, udid, "iPhone15,2")
	for step, code := range map[string]int{"authenticate": dev.Authenticate(t, "Car 12"), "token update": dev.TokenUpdate(t), "idle": dev.Idle(t)} {
		if code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", step, code)
		}
	}
	id := applemdm.DeviceID(udid)
	d, err := e.st.GetDevice(t.Context(), id)
	if err != nil {
		t.Fatalf("device not in the store: %v", err)
	}
	if d.Platform != "ios" || d.OSName != "iOS" || d.Owner != "" || d.Name != "Car 12" || d.Hostname != "Car 12" ||
		d.Serial != "SER-000081" || d.OSVersion != "17.4" || d.Status != store.StatusActive {
		t.Fatalf("device: %+v", d)
	}
	// A second Authenticate (re-enrollment) refreshes the same device.
	if code := dev.Authenticate(t, "Car 14"); code != http.StatusOK {
		t.Fatalf("re-authenticate: HTTP %d", code)
	}
	if d, _ := e.st.GetDevice(t.Context(), id); d.Name != "Car 14" {
		t.Fatalf("after re-authenticate: %+v", d)
	}
	// The identity is the device's certificate of record, once, so that
	// revoking the device reaches it.
	if c, err := e.st.GetCertificate(t.Context(), dev.Cert.SerialNumber.String()); err != nil || c.DeviceID != id {
		t.Fatalf("identity certificate of record: %+v %v", c, err)
	}
	if d, _ := e.st.GetDevice(t.Context(), id); d.CertSerial != dev.Cert.SerialNumber.String() {
		t.Fatalf("device's current certificate %q, want the identity's", d.CertSerial)
	}
	ds, err := e.st.ListDevices(t.Context())
	if err != nil || len(ds) != 1 {
		t.Fatalf("devices: %d %v", len(ds), err)
	}
	got := e.actions(t, "device:"+id)
	if len(got) != 2 || got[0] != applemdm.ActionEnrolled || got[1] != applemdm.ActionAuthenticated {
		t.Fatalf("audit: %v", got)
	}
}

// Acceptance 6: an identity from another CA is refused before nanomdm or
// Cordon records anything.
func TestForeignIdentityRefused(t *testing.T) {
	e := newEnv(t)
	other, err := pki.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	udid := "00008110-FOREIGN0000000000"
	dev := appletest.IssuedBy(t, other, e.url, udid, "iPad13,1")
	e.refusedIdentity(t, dev.Authenticate(t, "stranger"), "error verifying MDM certificate")
	e.refusedIdentity(t, http.StatusBadRequest, "unknown authority")
	if ds, _ := e.st.ListDevices(t.Context()); len(ds) != 0 {
		t.Fatalf("foreign device recorded: %+v", ds)
	}
}

func TestRevokedIdentityRefused(t *testing.T) {
	e := newEnv(t)
	udid := "00008110-REVOKED0000000000"
	dev := appletest.IssuedBy(t, e.ca, e.url, udid, "MacBookPro18,1")
	if code := dev.Authenticate(t, "desk mac"); code != http.StatusOK {
		t.Fatalf("authenticate: HTTP %d", code)
	}
	if d, _ := e.st.GetDevice(t.Context(), applemdm.DeviceID(udid)); d == nil || d.Platform != "macos" {
		t.Fatalf("mac: %+v", d)
	}
	if err := e.ca.Revoke(t.Context(), dev.Cert.SerialNumber.String(), "lost"); err != nil {
		t.Fatal(err)
	}
	e.refusedIdentity(t, dev.Idle(t), "device certificate revoked")
}

// In FIPS mode a SHA-1 signed message is refused before its signature
// is checked; outside it, the same message is accepted.
func TestSHA1SignatureRefusedInFIPSMode(t *testing.T) {
	if fips140.Enabled() {
		t.Skip("a fips140=only build cannot make the SHA-1 signature; the default build runs this test")
	}
	for _, fipsMode := range []bool{true, false} {
		e := newEnv(t, applemdm.WithFIPS(fipsMode))
		dev := appletest.IssuedBy(t, e.ca, e.url, "00008110-SHA1SIGNED00000000", "iPhone15,2")
		dev.Digest = pkcs7.OIDDigestAlgorithmSHA1
		code := dev.Authenticate(t, "old signer")
		if fipsMode {
			e.refusedIdentity(t, code, "digest is not SHA-2")
			if ds, _ := e.st.ListDevices(t.Context()); len(ds) != 0 {
				t.Fatalf("SHA-1 signed device recorded in FIPS mode: %+v", ds)
			}
		} else if code != http.StatusOK {
			t.Fatalf("SHA-1 signature outside FIPS mode: HTTP %d", code)
		}
	}
}

func TestPlatform(t *testing.T) {
	for _, c := range []struct{ product, model, want string }{
		{"iPhone15,2", "", "ios"}, {"iPod9,1", "", "ios"}, {"iPad13,1", "", "ipados"},
		{"Mac14,2", "", "macos"}, {"MacBookPro18,1", "", "macos"}, {"", "iMac21,1", "macos"},
		{"AppleTV11,1", "", ""}, {"RealityDevice14,1", "", ""},
	} {
		if got, _ := applemdm.Platform(c.product, c.model); got != c.want {
			t.Errorf("Platform(%q, %q) = %q, want %q", c.product, c.model, got, c.want)
		}
	}
}

func TestDeviceIDIsAStableUUID(t *testing.T) {
	a, b := applemdm.DeviceID("udid-1"), applemdm.DeviceID("udid-1")
	if a != b || a == applemdm.DeviceID("udid-2") || len(a) != 36 || a[14] != '8' {
		t.Fatalf("DeviceID: %q %q", a, b)
	}
}

// An agent's identity certificate is valid under Cordon's CA, but it was
// issued to the agent's device: it must not let its holder check in as
// an Apple device of its choosing.
func TestAgentIdentityCannotCheckInAsAnAppleDevice(t *testing.T) {
	e := newEnv(t)
	dev := appletest.IssuedFor(t, e.ca, e.url, "00008110-BORROWED00000000", "iPhone15,2", "7d7f9a55-3c1b-4f59-9a2e-6c1e7a0f3b21")
	if code := dev.Authenticate(t, "not a phone"); code < 400 {
		t.Fatalf("authenticate with an agent's certificate: HTTP %d, want a refusal", code)
	}
	if !bytes.Contains(e.log.Bytes(), []byte(applemdm.ErrNotThisDevice.Error())) {
		t.Fatalf("refusal not logged with its reason; log:\n%s", e.log)
	}
	if ds, _ := e.st.ListDevices(t.Context()); len(ds) != 0 {
		t.Fatalf("a device was recorded for a borrowed identity: %+v", ds)
	}
}

// A message beyond MaxMessage is refused, and not read whole.
func TestOversizedMessageRefused(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, e.url, io.LimitReader(zeros{}, applemdm.MaxMessage+1))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = applemdm.MaxMessage + 1
	req.Header.Set("Mdm-Signature", "AAAA")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a %d-byte message: HTTP %d, want 413", applemdm.MaxMessage+1, resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
