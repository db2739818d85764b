package integration

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestAPIAndConsoleAgreeOnRefusals: the same refused operation gets the
// same status from the REST API and from the console, since both map the
// service's error through server/status. The cases are the ones the two
// edges used to answer differently (an incident moved backwards, a command
// for a revoked device) and others each edge meets: an unknown incident,
// an allow-list entry the compliance service refuses. (A profile whose
// name does not match is refused by the API alone: the console has no
// page that saves profiles; status's table test holds it to 400.)
func TestAPIAndConsoleAgreeOnRefusals(t *testing.T) {
	clock := &skewClock{}
	e := testenv.New(t, "", clock.option())
	laso, admin := e.APIKey("laso"), e.APIKey("it-admin")
	visitor := map[string]*browserless{}
	for _, role := range []string{"laso", "it-admin"} {
		email := role + "@statuses.example"
		pw := addConsoleUser(t, e, email, role)
		visitor[role] = newBrowserless(t, e)
		visitor[role].signIn(email, pw, clock.now)
	}
	lost, revoked := e.StartAgent(e.MustEnroll()), e.StartAgent(e.MustEnroll())
	waitOnline(t, e, laso, lost.DeviceID())

	var inc struct {
		ID string `json:"id"`
	}
	if st := e.Do("POST", "/api/v1/incidents", laso, map[string]any{"device_id": lost.DeviceID(), "kind": "loss_of_control",
		"lock_state": "locked", "started_at": time.Now().Add(-time.Hour).UTC(), "location": "bus 14", "description": "left on the seat"}, &inc); st != 201 {
		t.Fatalf("file incident: %d", st)
	}
	if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, laso, map[string]any{"status": "triaged"}, nil); st != 200 {
		t.Fatalf("triage: %d", st)
	}
	if st := e.Do("POST", "/api/v1/devices/"+revoked.DeviceID()+"/revoke", admin, map[string]string{"reason": "lost"}, nil); st != 200 {
		t.Fatalf("revoke: %d", st)
	}

	for _, c := range []struct {
		name          string
		want          int
		apiMethod     string
		apiPath       string
		apiKey        string
		apiBody       any
		consoleRole   string
		consolePath   string
		consoleValues url.Values
	}{
		{"incident moved backwards (incidents.ErrTransition)", http.StatusBadRequest,
			"PATCH", "/api/v1/incidents/" + inc.ID, laso, map[string]any{"status": "reported"},
			"laso", "/console/incidents/" + inc.ID, url.Values{"status": {"reported"}}},
		{"command for a revoked device (commands.ErrRevoked)", http.StatusConflict,
			"POST", "/api/v1/devices/" + revoked.DeviceID() + "/commands", laso, map[string]any{"kind": "lock"},
			"laso", "/console/devices/" + revoked.DeviceID() + "/lock", url.Values{}},
		{"unknown incident (store.ErrNotFound)", http.StatusNotFound,
			"PATCH", "/api/v1/incidents/no-such-incident", laso, map[string]any{"status": "closed"},
			"laso", "/console/incidents/no-such-incident", url.Values{"status": {"closed"}}},
		{"allow-list entry without an address (compliance.ErrInvalid)", http.StatusBadRequest,
			"POST", "/api/v1/bluetooth/allowlist", admin, map[string]any{"address": "not-an-address", "name": "Headset", "scope": "agency", "reason": "court"},
			"it-admin", "/console/bluetooth/allowlist", url.Values{"address": {"not-an-address"}, "name": {"Headset"}, "scope": {"agency"}, "reason": {"court"}}},
	} {
		api := e.Do(c.apiMethod, c.apiPath, c.apiKey, c.apiBody, nil)
		console, body, _ := visitor[c.consoleRole].post(c.consolePath, c.consoleValues)
		if api != c.want || console != c.want {
			t.Errorf("%s: API %d, console %d, want both %d\nconsole: %.300s", c.name, api, console, c.want, body)
		}
	}
}
