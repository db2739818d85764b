package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
)

// TestIncidentLifecycleOverTheAPI: a user reports, the LASO ends and
// closes, the form is there for the CSA ISO; an IT admin cannot close.
func TestIncidentLifecycleOverTheAPI(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		user, laso, admin := e.APIKey("user"), e.APIKey("laso"), e.APIKey("it-admin")
		dir := e.MustEnroll()
		a := e.StartAgent(dir)
		waitOnline(t, e, laso, a.DeviceID())

		started := time.Now().UTC().Add(-20 * time.Minute)
		var inc struct {
			ID            string `json:"id"`
			Category      string `json:"category"`
			DurationClass string `json:"duration_class"`
			Severity      string `json:"severity"`
			Status        string `json:"status"`
			Timeline      []struct {
				Action string `json:"action"`
			} `json:"timeline"`
		}
		st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
			"lock_state": "unknown", "started_at": started, "location": "bus 14, eastbound", "description": "left on the seat"}, &inc)
		if st != 201 || inc.DurationClass != "extended" || inc.Category != "unknown_extended" || inc.Status != "reported" {
			t.Fatalf("report: %d %+v", st, inc)
		}
		if st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": a.DeviceID(), "kind": "stolen-ish",
			"started_at": started}, nil); st != 400 {
			t.Fatalf("unknown kind: %d", st)
		}
		ended := started.Add(18 * time.Minute)
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, admin, map[string]any{"status": "closed"}, nil); st != 403 {
			t.Fatalf("it-admin closing: %d", st)
		}
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, laso, map[string]any{"status": "triaged", "ended_at": ended}, nil); st != 200 {
			t.Fatalf("triage: %d", st)
		}
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, laso, map[string]any{"status": "closed", "disposition": "recovered from lost and found"}, nil); st != 200 {
			t.Fatalf("close: %d", st)
		}
		e.Do("GET", "/api/v1/incidents/"+inc.ID, laso, nil, &inc)
		if inc.Status != "closed" || len(inc.Timeline) < 4 {
			t.Fatalf("closed incident %+v", inc)
		}
		req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/api/v1/incidents/"+inc.ID+"/form", nil)
		req.Header.Set("Authorization", "Bearer "+laso)
		req.Header.Set("Accept", "text/html")
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"IT Security Incident Response Form", "bus 14, eastbound", "recovered from lost and found", "Method of detection"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("form lacks %q", want)
			}
		}
		for _, action := range []string{"incident.reported", "incident.updated"} {
			if len(e.Audit(action)) == 0 {
				t.Errorf("no %s audit entry", action)
			}
		}
	})
}
