package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/micromdm/plist"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// applePhone drives a fake iPhone through the queue the server fills.
type applePhone struct {
	t   *testing.T
	dev *appletest.Device
}

// answer answers the next command of kind with extra, refusing (Error)
// the commands queued before it, and returns the command.
func (p applePhone) answer(kind, status string, extra map[string]any) *appletest.Command {
	p.t.Helper()
	for c := p.dev.Next(p.t); c != nil; c = p.dev.Answer(p.t, c.UUID, applemdm.StatusError, nil) {
		if c.RequestType == kind {
			p.dev.Answer(p.t, c.UUID, status, extra)
			return c
		}
	}
	p.t.Fatalf("no %s queued", kind)
	return nil
}

func appleAccess(e *testenv.Env, key, id string) accessJSON {
	var a accessJSON
	if code := e.Do("GET", "/api/v1/devices/"+id+"/access", key, nil, &a); code != http.StatusOK {
		e.T.Fatalf("access: HTTP %d", code)
	}
	return a
}

// reasonOf is the reason naming control, "" when none does.
func reasonOf(a accessJSON, control string) string {
	for _, r := range a.Reasons {
		if strings.HasPrefix(r, control+":") {
			return r
		}
	}
	return ""
}

// Issue 17 acceptance 3: a SecurityInfo answer without a passcode makes
// an iPhone noncompliant under cjis-baseline and its access deny; the
// passcode profile is installed (from the device's compliance profile,
// with maxFailedAttempts), the device answers compliant, and the
// findings clear. DeviceInformation shows in the posture.
func TestApplePasscodeFindingClearsOnceTheProfileIsInstalled(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		admin, laso := e.APIKey("it-admin"), e.APIKey("laso")
		dev := appletest.IssuedBy(t, e.Server.CA, e.Server.ConsoleURL()+"/mdm", "00008110-POSTUREPHONE000001", "iPhone15,2")
		dev.Client = e.Client()
		if dev.Authenticate(t, "patrol 7") != http.StatusOK || dev.TokenUpdate(t) != http.StatusOK {
			t.Fatal("enrollment")
		}
		id := applemdm.DeviceID(dev.UDID)
		phone := applePhone{t, dev}

		// The profile comes first; the officer has not allowed it yet.
		phone.answer(applemdm.ReqInstallProfile, applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{
			{"ErrorCode": 4001, "ErrorDomain": "MCInstallationErrorDomain", "USEnglishDescription": "The profile was declined"}}})
		phone.answer(applemdm.ReqDeviceInformation, applemdm.StatusAcknowledged, map[string]any{"QueryResponses": map[string]any{
			"OSVersion": "17.5.1", "BuildVersion": "21F90", "ProductName": "iPhone15,2", "Model": "MQ9T3LL/A",
			"DeviceName": "patrol 7", "SerialNumber": "SER-POSTURE", "IsSupervised": true, "BluetoothMAC": "a4:83:e7:00:00:07"}})
		phone.answer(applemdm.ReqSecurityInfo, applemdm.StatusAcknowledged, map[string]any{"SecurityInfo": map[string]any{
			"HardwareEncryptionCaps": 3, "PasscodePresent": false, "PasscodeCompliant": false, "PasscodeCompliantWithProfiles": false}})

		var d struct {
			Posture *protocol.Posture `json:"posture"`
		}
		if code := e.Do("GET", "/api/v1/devices/"+id, admin, nil, &d); code != http.StatusOK || d.Posture == nil {
			t.Fatalf("device: HTTP %d, posture %v", code, d.Posture)
		}
		if os := d.Posture.OS; os.Version != "17.5.1" || os.Build != "21F90" || os.Name != "iOS" || os.Platform != "ios/arm64" {
			t.Fatalf("posture os %+v", os)
		}
		if en, err := e.Server.Store.GetAppleEnrollment(t.Context(), id); err != nil || !en.Supervised {
			t.Fatalf("supervised not recorded: %+v %v", en, err)
		}
		a := appleAccess(e, laso, id)
		if a.Decision != "deny" || a.Compliance == "compliant" || reasonOf(a, "disk_encryption") == "" || reasonOf(a, "session_lock") == "" {
			t.Fatalf("without a passcode: %+v", a)
		}
		if n := len(e.Audit(applemdm.ActionProfileInstalled)); n != 1 {
			t.Fatalf("%d profile entries after the refusal", n)
		}

		// ProfileList shows Cordon's profile missing: it is sent again.
		phone.answer(applemdm.ReqProfileList, applemdm.StatusAcknowledged, map[string]any{"ProfileList": []map[string]any{}})
		install := phone.answer(applemdm.ReqInstallProfile, applemdm.StatusAcknowledged, nil)
		raw, _ := install.Fields["Payload"].([]byte)
		var doc struct {
			PayloadIdentifier, PayloadUUID string
			PayloadContent                 []map[string]any
		}
		if err := plist.Unmarshal(raw, &doc); err != nil {
			t.Fatalf("InstallProfile payload: %v", err)
		}
		var passcode map[string]any
		for _, p := range doc.PayloadContent {
			if p["PayloadType"] == "com.apple.mobiledevice.passwordpolicy" {
				passcode = p
			}
		}
		if doc.PayloadIdentifier != "org.cordon-mdm.profile.cjis-baseline" || fmt.Sprint(passcode["maxFailedAttempts"]) != "10" ||
			fmt.Sprint(passcode["minLength"]) != "6" || passcode["forcePIN"] != true {
			t.Fatalf("installed %s with passcode payload %v", doc.PayloadIdentifier, passcode)
		}
		outcomes := map[string]string{}
		for _, en := range e.Audit(applemdm.ActionProfileInstalled) {
			outcomes[en.Outcome] = en.Details["error"]
		}
		if len(outcomes) != 2 || outcomes["failure"] != "MCInstallationErrorDomain 4001: The profile was declined" {
			t.Fatalf("profile install entries %v", outcomes)
		}

		// On demand: a fresh report, now with a passcode and the profile.
		var rq struct{ Queries []string }
		if code := e.Do("POST", "/api/v1/devices/"+id+"/refresh", laso, nil, &rq); code != http.StatusAccepted || len(rq.Queries) != 5 {
			t.Fatalf("refresh: HTTP %d %v", code, rq)
		}
		if code := e.Do("POST", "/api/v1/devices/3f9a2c1e-0000-4000-8000-000000000000/refresh", laso, nil, nil); code != http.StatusNotFound {
			t.Fatalf("refresh of a device Apple MDM does not manage: HTTP %d, want 404", code)
		}
		if code := e.Do("POST", "/api/v1/devices/"+id+"/refresh", e.APIKey("auditor"), nil, nil); code != http.StatusForbidden {
			t.Fatalf("refresh as auditor: HTTP %d", code)
		}
		if len(e.Audit(applemdm.ActionProfileInstalled)) != 2 || len(e.Audit("apple.refresh_requested")) != 1 {
			t.Fatal("refresh not audited")
		}
		phone.answer(applemdm.ReqSecurityInfo, applemdm.StatusAcknowledged, map[string]any{"SecurityInfo": map[string]any{
			"HardwareEncryptionCaps": 3, "PasscodePresent": true, "PasscodeCompliant": true, "PasscodeCompliantWithProfiles": true}})
		phone.answer(applemdm.ReqProfileList, applemdm.StatusAcknowledged, map[string]any{"ProfileList": []map[string]any{
			{"PayloadIdentifier": doc.PayloadIdentifier, "PayloadUUID": doc.PayloadUUID}}})
		phone.answer(applemdm.ReqInstalledApplicationList, applemdm.StatusAcknowledged, map[string]any{"InstalledApplicationList": []map[string]any{
			{"Identifier": "com.apple.mobilesafari", "Name": "Safari", "Version": "17.5"}}})
		phone.answer(applemdm.ReqAvailableOSUpdates, applemdm.StatusAcknowledged, map[string]any{"AvailableOSUpdates": []map[string]any{}})
		if c := dev.Next(t); c != nil {
			t.Fatalf("the current profile listed, yet %s was queued", c.RequestType)
		}

		a = appleAccess(e, laso, id)
		if r := reasonOf(a, "disk_encryption") + reasonOf(a, "session_lock"); r != "" {
			t.Fatalf("the passcode findings did not clear: %s", r)
		}
		if code := e.Do("GET", "/api/v1/devices/"+id, admin, nil, &d); code != http.StatusOK {
			t.Fatal("device")
		}
		for _, r := range a.Reasons {
			// What remains is what Apple cannot tell, said as such.
			if !strings.Contains(r, "could not tell") {
				t.Errorf("a failure remains: %s", r)
			}
		}
		// Root detection reads the installed-application list, which
		// holds no jailbreak tool: nothing is left, and access is allowed.
		if d.Posture.Software == nil || a.Decision != "allow" || reasonOf(a, "not_rooted") != "" {
			t.Fatalf("with the application list: %+v (software %+v)", a, d.Posture.Software)
		}
	})
}
