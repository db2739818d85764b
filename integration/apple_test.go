package integration

import (
	"net/http"
	"testing"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
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
	})
}
