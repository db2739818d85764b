package integration

import (
	"net/http"
	"testing"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/secret"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// A second enrollment profile cannot take over an enrolled iPhone by
// naming its UDID: nanomdm would link the new identity to the UDID and
// take its push token, and Cordon would lose the device. It is refused
// (403, audited) until IT revokes the enrolled device; then the UDID
// enrolls again, as a wiped iPhone does.
func TestAnotherProfileCannotTakeOverAnEnrolledUDID(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		admin := e.APIKey("it-admin")
		const udid = "00008110-CLAIMED000000001"
		victim, victimID := scepIPhone(t, e, "ofc.lee@pd.example", udid)
		victim.Settle(t)

		intruder := scepIdentity(t, e, "someone@pd.example", udid)
		if code := intruder.Authenticate(t, "not yours"); code != http.StatusForbidden {
			t.Fatalf("another profile's Authenticate for an enrolled UDID: HTTP %d, want 403", code)
		}
		if code := intruder.TokenUpdate(t); code == http.StatusOK {
			t.Fatal("the refused identity's TokenUpdate went through")
		}
		if en, err := e.Server.Store.GetAppleEnrollmentOfUDID(t.Context(), udid); err != nil || en.DeviceID != victimID {
			t.Fatalf("the UDID's enrollment: %+v %v, want still %s", en, err, victimID)
		}
		if refused := e.Audit(applemdm.ActionRefused); len(refused) != 1 || refused[0].Outcome != "denied" {
			t.Fatalf("refusal audit: %+v", refused)
		}
		// The enrolled device still takes commands.
		if err := e.Server.AppleMDM.Send(t.Context(), victimID, applemdm.Command{RequestType: "DeviceInformation", Ref: "still-mine"}); err != nil {
			t.Fatal(err)
		}
		if c := victim.Next(t); c == nil || c.UUID != "DeviceInformation.still-mine" {
			t.Fatalf("the enrolled iPhone got %+v", c)
		}

		if st := e.Do("POST", "/api/v1/devices/"+victimID+"/revoke", admin, map[string]string{"reason": "wiped"}, nil); st != http.StatusOK {
			t.Fatalf("revoke: HTTP %d", st)
		}
		if code := intruder.Authenticate(t, "re-enrolled"); code != http.StatusOK {
			t.Fatalf("after IT revoked the old device: HTTP %d, want 200", code)
		}
	})
}

// A device name with a control character (a newline; XML cannot carry
// most others) is refused at Authenticate.
func TestAppleAuthenticateRefusesControlCharacters(t *testing.T) {
	e := testenv.New(t, "")
	d := appletest.IssuedBy(t, e.Server.CA, e.Server.ConsoleURL()+"/mdm", "00008110-CTRLCHAR000000001", "iPhone15,2")
	d.Client = e.Client()
	if code := d.Authenticate(t, "car 7\nrm -rf"); code != http.StatusBadRequest {
		t.Fatalf("a device name with a newline: HTTP %d, want 400", code)
	}
	if _, err := e.Server.Store.GetAppleEnrollmentOfUDID(t.Context(), d.UDID); err == nil {
		t.Fatal("the refused device was enrolled")
	}
}

// scepIdentity is a fake iPhone claiming udid with an identity from
// Cordon's CA through /scep, for a new token of owner, not yet checked in.
func scepIdentity(t *testing.T, e *testenv.Env, owner, udid string) *appletest.Device {
	t.Helper()
	var tok struct{ Token string }
	if code := e.Do("POST", "/api/v1/enrollment-tokens", e.APIKey("it-admin"), map[string]any{"owner": owner}, &tok); code != http.StatusCreated {
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
	return appletest.Enrolled(t, e.Client(), base+"/scep", base+"/mdm", ch, udid, "iPhone15,2")
}
