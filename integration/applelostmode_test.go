package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
)

// lostModeCommand is the device's next lost-mode command: any other the
// server queued meanwhile (a DeviceLock from the same playbook, a
// posture query) is acknowledged and passed over.
func lostModeCommand(t *testing.T, d *appletest.Device, c *appletest.Command) *appletest.Command {
	t.Helper()
	for i := 0; c != nil && i < 10; i++ {
		switch c.RequestType {
		case "EnableLostMode", "DeviceLocation", "PlayLostModeSound", "DisableLostMode":
			return c
		}
		c = d.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	}
	return c
}

type lostIncident struct {
	ID             string `json:"id"`
	DeviceLocation *struct {
		Latitude       float64  `json:"latitude"`
		Longitude      float64  `json:"longitude"`
		AccuracyMeters *float64 `json:"accuracy_meters"`
		DeviceTime     *string  `json:"device_time"`
		ReceivedAt     string   `json:"received_at"`
	} `json:"device_location"`
	Timeline []struct{ Actor, Action, Detail string } `json:"timeline"`
}

// Issue 17 acceptance 4: on a supervised fake iPhone, a reported loss of
// control enables lost mode (EnableLostMode, then DeviceLocation, pushed
// through APNs), and the device's location is then on the incident with
// its accuracy and time. The LASO locates again and resolving the
// incident disables lost mode. On an unsupervised iPhone no lost-mode
// command is sent and the incident says why.
func TestLostModeOnASupervisedAppleDevice(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		apns := appletest.NewAPNs(t)
		e := testenv.New(t, dsn(t), server.WithAPNs(apns.URL(), apns.Roots()),
			server.WithLostModeMessage("Property of Example County Sheriff. Please call:", "+1 555 0100"))
		certPEM, keyPEM := appletest.PushCert(t, appletest.Topic, 365*24*time.Hour)
		if _, err := e.Server.AppleMDM.StorePushCert(t.Context(), certPEM, keyPEM, "local:it", "local"); err != nil {
			t.Fatal(err)
		}
		phone, id := scepIPhone(t, e, "ofc.lee@pd.example", "00008110-LOSTPHONE000000001")
		byod, byodID := scepIPhone(t, e, "ofc.lee@pd.example", "00008110-BYODPHONE000000002")
		if err := e.Server.Store.UpdateAppleEnrollment(t.Context(), id, map[string]any{"supervised": true}, time.Now()); err != nil {
			t.Fatal(err)
		}
		laso, user := e.APIKey("laso"), e.APIKey("user")
		pushesBefore := len(apns.Pushes())

		var inc lostIncident
		if code := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": id, "kind": "loss_of_control",
			"lock_state": "unknown", "started_at": time.Now().Add(-2 * time.Minute).UTC()}, &inc); code != http.StatusCreated {
			t.Fatalf("report: HTTP %d", code)
		}
		if len(apns.Pushes()) <= pushesBefore {
			t.Fatal("lost mode was queued without a push")
		}
		c := lostModeCommand(t, phone, phone.Next(t))
		if c == nil || c.RequestType != "EnableLostMode" || !strings.HasPrefix(c.UUID, "EnableLostMode."+inc.ID+".") ||
			c.Fields["Message"] != "Property of Example County Sheriff. Please call:" || c.Fields["PhoneNumber"] != "+1 555 0100" || !strings.Contains(c.Fields["Footnote"].(string), inc.ID) {
			t.Fatalf("the device got %+v, want EnableLostMode for incident %s", c, inc.ID)
		}
		c = lostModeCommand(t, phone, phone.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil))
		if c == nil || c.RequestType != "DeviceLocation" {
			t.Fatalf("after the enable the device got %+v, want DeviceLocation", c)
		}
		deviceTime := time.Now().UTC().Add(-20 * time.Second).Truncate(time.Second)
		phone.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"Latitude": 40.7128, "Longitude": -74.006,
			"HorizontalAccuracy": 35.0, "VerticalAccuracy": 10.0, "Altitude": 12.0, "Speed": 0.0, "Course": -1.0,
			"Timestamp": deviceTime.Format(time.RFC3339)})

		var got lostIncident
		if code := e.Do("GET", "/api/v1/incidents/"+inc.ID, laso, nil, &got); code != http.StatusOK {
			t.Fatalf("get incident: HTTP %d", code)
		}
		l := got.DeviceLocation
		if l == nil || l.Latitude != 40.7128 || l.Longitude != -74.006 || l.AccuracyMeters == nil || *l.AccuracyMeters != 35 ||
			l.DeviceTime == nil || *l.DeviceTime != timefmt.JSON(deviceTime) || l.ReceivedAt == "" {
			t.Fatalf("device_location %+v, want the device's answer with its accuracy and time", l)
		}
		if !hasEvent(got.Timeline, "located", "device:"+id) || !hasEvent(got.Timeline, "lost_mode_enabled", "device:"+id) ||
			!hasEvent(got.Timeline, "lost_mode", "playbook") {
			t.Fatalf("timeline %+v", got.Timeline)
		}

		// The LASO asks again; an it-admin may not.
		if code := e.Do("POST", "/api/v1/incidents/"+inc.ID+"/lost-mode", e.APIKey("it-admin"), map[string]any{"action": "locate"}, nil); code != http.StatusForbidden {
			t.Fatalf("it-admin locate: HTTP %d, want 403", code)
		}
		if code := e.Do("POST", "/api/v1/incidents/"+inc.ID+"/lost-mode", laso, map[string]any{"action": "locate"}, nil); code != http.StatusAccepted {
			t.Fatalf("locate: HTTP %d, want 202", code)
		}
		c = lostModeCommand(t, phone, phone.Next(t))
		if c == nil || c.RequestType != "DeviceLocation" {
			t.Fatalf("after the LASO's locate the device got %+v", c)
		}
		// Moved, and without a time or an accuracy this time: the newest
		// location is the incident's, with what it lacks as null.
		phone.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"Latitude": 40.73, "Longitude": -73.99, "HorizontalAccuracy": -1.0})
		var again lostIncident
		if code := e.Do("GET", "/api/v1/incidents/"+inc.ID, laso, nil, &again); code != http.StatusOK {
			t.Fatalf("get incident: HTTP %d", code)
		}
		if l := again.DeviceLocation; l == nil || l.Latitude != 40.73 || l.AccuracyMeters != nil || l.DeviceTime != nil {
			t.Fatalf("device_location after the second answer %+v", l)
		}

		// Resolved, the device is released from lost mode.
		if code := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, laso, map[string]any{"ended_at": time.Now().UTC(), "status": "resolved"}, nil); code != http.StatusOK {
			t.Fatalf("resolve: HTTP %d", code)
		}
		if c := lostModeCommand(t, phone, phone.Next(t)); c == nil || c.RequestType != "DisableLostMode" {
			t.Fatalf("after resolution the device got %+v, want DisableLostMode", c)
		}

		// The unsupervised iPhone: no lost mode, and the incident says why.
		var other lostIncident
		if code := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": byodID, "kind": "loss_of_control",
			"lock_state": "unknown", "started_at": time.Now().Add(-time.Minute).UTC()}, &other); code != http.StatusCreated {
			t.Fatalf("report: HTTP %d", code)
		}
		if c := lostModeCommand(t, byod, byod.Next(t)); c != nil {
			t.Fatalf("an unsupervised device got %+v", c)
		}
		if code := e.Do("GET", "/api/v1/incidents/"+other.ID, laso, nil, &other); code != http.StatusOK {
			t.Fatalf("get incident: HTTP %d", code)
		}
		if !hasEvent(other.Timeline, "lost_mode", "playbook") || !strings.Contains(eventDetail(other.Timeline, "lost_mode"), "not supervised") ||
			other.DeviceLocation != nil {
			t.Fatalf("unsupervised incident %+v, want a lost_mode event saying it is not supervised", other)
		}
		if code := e.Do("POST", "/api/v1/incidents/"+other.ID+"/lost-mode", laso, map[string]any{"action": "enable"}, nil); code != http.StatusConflict {
			t.Fatalf("enable on an unsupervised device: HTTP %d, want 409", code)
		}
		for _, a := range []string{applemdm.ActionLostMode, applemdm.ActionLostModeAnswer, applemdm.ActionLocated} {
			if len(e.Audit(a)) == 0 {
				t.Errorf("no %s audit entry", a)
			}
		}
	})
}

func hasEvent(tl []struct{ Actor, Action, Detail string }, action, actor string) bool {
	for _, e := range tl {
		if e.Action == action && e.Actor == actor {
			return true
		}
	}
	return false
}

func eventDetail(tl []struct{ Actor, Action, Detail string }, action string) string {
	for _, e := range tl {
		if e.Action == action {
			return e.Detail
		}
	}
	return ""
}
