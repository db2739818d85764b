package integration

import (
	"net/http"
	"testing"

	"github.com/smallstep/scep"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/pki/identity"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// Issue 17's first slice: fake Apple devices whose identities Cordon's CA
// issued enroll over /mdm on the console listener and appear in the
// device list with their platform; one from another CA does not.
func TestAppleDevicesEnrollOverMDMAndAreListed(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		url := e.Server.ConsoleURL() + "/mdm"
		devices := map[string]*appletest.Device{
			"ios":    appletest.IssuedBy(t, e.Server.CA, url, "00008110-IPHONE00000000001", "iPhone15,2"),
			"ipados": appletest.IssuedBy(t, e.Server.CA, url, "00008110-IPAD0000000000001", "iPad13,1"),
			"macos":  appletest.IssuedBy(t, e.Server.CA, url, "00008110-MAC00000000000001", "Mac14,2"),
		}
		for platform, d := range devices {
			d.Client = e.Client()
			for step, code := range map[string]int{"authenticate": d.Authenticate(t, platform+" unit"),
				"token update": d.TokenUpdate(t), "idle": d.Idle(t)} {
				if code != http.StatusOK {
					t.Fatalf("%s %s: HTTP %d", platform, step, code)
				}
			}
		}
		other, err := pki.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { other.Close() })
		stranger := appletest.IssuedBy(t, other, url, "00008110-STRANGER000000001", "iPhone15,2")
		stranger.Client = e.Client()
		if code := stranger.Authenticate(t, "stranger"); code != http.StatusBadRequest {
			t.Fatalf("foreign identity: HTTP %d, want 400", code)
		}

		var out struct {
			Devices []struct {
				ID, Name, Platform, Owner, Status string
			} `json:"devices"`
		}
		if code := e.Do("GET", "/api/v1/devices", e.APIKey("it-admin"), nil, &out); code != http.StatusOK {
			t.Fatalf("list devices: HTTP %d", code)
		}
		if len(out.Devices) != len(devices) {
			t.Fatalf("devices listed: %+v", out.Devices)
		}
		for _, got := range out.Devices {
			d, ok := devices[got.Platform]
			if !ok || got.ID != applemdm.DeviceID(d.UDID) || got.Name != got.Platform+" unit" || got.Status != "active" || got.Owner != "" {
				t.Errorf("listed device: %+v", got)
			}
		}
		if n := len(e.Audit(applemdm.ActionEnrolled)); n != len(devices) {
			t.Errorf("%d %s audit entries, want %d", n, applemdm.ActionEnrolled, len(devices))
		}
		// On PostgreSQL nanomdm's enrollments are in Cordon's database,
		// in their own schema; on SQLite in its file store.
		if e.Server.Store.Dialect() == "postgres" {
			db, err := e.Server.Store.SchemaDB(t.Context(), "nanomdm")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM enrollments WHERE enabled").Scan(&n); err != nil || n != len(devices) {
				t.Fatalf("nanomdm enrollments in PostgreSQL: %d %v, want %d", n, err, len(devices))
			}
		}
	})
}

// Issue 17 acceptance 1 end to end: an it-admin makes an enrollment
// token for an officer, a challenge is minted for it, and a fake iPhone
// gets its identity from Cordon's CA through /scep and authenticates
// through /mdm. It is listed as the device SCEP named, platform ios,
// with the token's owner; the same challenge enrolls nothing twice.
func TestAppleDeviceEnrolledThroughSCEPIsListedWithItsOwner(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		admin := e.APIKey("it-admin")
		const owner = "ofc.reyes@pd.example"
		var tok struct{ Token string }
		if code := e.Do("POST", "/api/v1/enrollment-tokens", admin, map[string]any{"owner": owner}, &tok); code != http.StatusCreated {
			t.Fatalf("create token: HTTP %d", code)
		}
		tokenID, _, err := secret.Parse(enroll.TokenPrefix, tok.Token)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := e.Server.SCEP.MintChallenge(t.Context(), tokenID, "apikey:it-admin")
		if err != nil {
			t.Fatal(err)
		}
		base := e.Server.ConsoleURL()
		d := appletest.Enrolled(t, e.Client(), base+"/scep", base+"/mdm", ch, "00008110-SCEPPHONE00000001", "iPhone15,2")
		deviceID, err := identity.DeviceID(d.Cert)
		if err != nil {
			t.Fatal(err)
		}
		for step, code := range map[string]int{"authenticate": d.Authenticate(t, "patrol 12"),
			"token update": d.TokenUpdate(t), "idle": d.Idle(t)} {
			if code != http.StatusOK {
				t.Fatalf("%s: HTTP %d", step, code)
			}
		}

		var out struct {
			Devices []struct {
				ID, Name, Platform, Owner, Status string
			} `json:"devices"`
		}
		if code := e.Do("GET", "/api/v1/devices", admin, nil, &out); code != http.StatusOK {
			t.Fatalf("list devices: HTTP %d", code)
		}
		if len(out.Devices) != 1 {
			t.Fatalf("devices listed: %+v", out.Devices)
		}
		if got := out.Devices[0]; got.ID != deviceID || got.Platform != "ios" || got.Owner != owner ||
			got.Name != "patrol 12" || got.Status != "active" {
			t.Fatalf("listed %+v, want device %s (ios, %s)", got, deviceID, owner)
		}
		if n := len(e.Audit(applemdm.ActionEnrolled)); n != 1 {
			t.Errorf("%d %s audit entries, want 1", n, applemdm.ActionEnrolled)
		}

		again, err := appletest.SCEP(t.Context(), e.Client(), base+"/scep", ch)
		if err != nil {
			t.Fatal(err)
		}
		if again.Status != scep.FAILURE || again.Cert != nil {
			t.Fatalf("the same challenge a second time: %s", again.Status)
		}
	})
}

// scepIPhone enrolls a fake iPhone as a real one does: a token for owner, a
// one-time SCEP challenge for it, an identity from Cordon's CA through
// /scep, then Authenticate and TokenUpdate over /mdm.
func scepIPhone(t *testing.T, e *testenv.Env, owner, udid string) (*appletest.Device, string) {
	t.Helper()
	d := scepIdentity(t, e, owner, udid)
	id, err := identity.DeviceID(d.Cert)
	if err != nil {
		t.Fatal(err)
	}
	for step, code := range map[string]int{"authenticate": d.Authenticate(t, "patrol "+udid[len(udid)-2:]), "token update": d.TokenUpdate(t)} {
		if code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", step, code)
		}
	}
	return d, id
}
