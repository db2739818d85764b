package applemdm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/applemdm"
	"github.com/cordon-mdm/cordon/server/applemdm/appletest"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

var _ incidents.LostMode = (*applemdm.LostMode)(nil)

// lostEnv is a checked-in iPhone with an incident about it, and lost
// mode over the env's MDM.
func lostEnv(t *testing.T, udid string) (*env, *appletest.Device, string, *applemdm.LostMode, string) {
	t.Helper()
	e := newEnv(t)
	dev, id := e.enrolled(t, udid)
	inc := &store.Incident{ID: "4d1c2b7a-0000-4000-8000-00000000000" + udid[len(udid)-1:], DeviceID: id, Status: "reported",
		StartedAt: time.Now().UTC()}
	if err := e.st.SaveIncident(t.Context(), inc); err != nil {
		t.Fatal(err)
	}
	lm := applemdm.NewLostMode(e.mdm, e.st, audit.New(e.st, nil), applemdm.WithLostModeMessage("Property of Example County Sheriff", "+1 555 0100"))
	return e, dev, id, lm, inc.ID
}

func timeline(t *testing.T, st *store.Store, id string) []store.IncidentEvent {
	t.Helper()
	tl, err := st.IncidentTimeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func actionsOf(tl []store.IncidentEvent) string {
	var out []string
	for _, e := range tl {
		out = append(out, e.Action)
	}
	return strings.Join(out, ",")
}

// TestLostModeEnableAndLocate: enable queues EnableLostMode (the
// agency's message and phone, the incident in the footnote) and then
// DeviceLocation, with the step on the timeline, in the trail and on the
// enrollment; the device's answers land on the incident, the location
// with its accuracy, the device's time and the server's receipt. A
// resent answer changes nothing.
func TestLostModeEnableAndLocate(t *testing.T) {
	e, dev, id, lm, incID := lostEnv(t, "00008110-000AAAAAAAAAAAA1")
	ctx := t.Context()
	if err := lm.Enable(ctx, id, incID, "playbook", "local"); err != nil {
		t.Fatal(err)
	}
	if en, _ := e.st.GetAppleEnrollment(ctx, id); en.LostModeIncident != incID || en.LostModeAt == nil {
		t.Fatalf("enrollment %+v, want lost mode for %s", en, incID)
	}
	c := dev.Next(t)
	if c == nil || c.RequestType != "EnableLostMode" || !strings.HasPrefix(c.UUID, "EnableLostMode."+incID+".") ||
		c.Fields["Message"] != "Property of Example County Sheriff" || c.Fields["PhoneNumber"] != "+1 555 0100" ||
		!strings.Contains(c.Fields["Footnote"].(string), incID) {
		t.Fatalf("first command %+v", c)
	}
	loc := dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	if loc == nil || loc.RequestType != "DeviceLocation" || !strings.HasPrefix(loc.UUID, "DeviceLocation."+incID+".") {
		t.Fatalf("after the enable the device got %+v, want DeviceLocation", loc)
	}
	deviceTime := time.Now().UTC().Add(-30 * time.Second).Truncate(time.Second)
	answer := map[string]any{"Latitude": 38.8977, "Longitude": -77.0365, "HorizontalAccuracy": 65.0, "VerticalAccuracy": -1.0,
		"Altitude": -1.0, "Speed": -1.0, "Course": -1.0, "Timestamp": deviceTime.Format(time.RFC3339)}
	before := time.Now().UTC()
	if next := dev.Answer(t, loc.UUID, applemdm.StatusAcknowledged, answer); next != nil {
		t.Fatalf("queue not empty: %+v", next)
	}
	tl := timeline(t, e.st, incID)
	if actionsOf(tl) != "lost_mode,lost_mode_enabled,located" {
		t.Fatalf("timeline %s", actionsOf(tl))
	}
	got := incidents.LastDeviceLocation(tl)
	if got == nil || got.Latitude != 38.8977 || got.Longitude != -77.0365 || got.Accuracy == nil || *got.Accuracy != 65 ||
		got.DeviceTime == nil || !got.DeviceTime.Equal(deviceTime) || got.ReceivedAt.Before(before.Truncate(time.Microsecond)) {
		t.Fatalf("location %+v from %q", got, tl[2].Detail)
	}
	if tl[2].Actor != "device:"+id {
		t.Fatalf("located by %q", tl[2].Actor)
	}
	// The device resends its answer (say nanomdm's store failed after
	// Cordon's): the timeline keeps one copy.
	dev.Answer(t, loc.UUID, applemdm.StatusAcknowledged, answer)
	if n := len(timeline(t, e.st, incID)); n != 3 {
		t.Fatalf("a resent answer made %d events, want 3", n)
	}
	// Located again, the time a plist date and an hour ahead of the
	// server: kept as the device's, brought back to the receipt.
	if err := lm.Locate(ctx, id, incID, "laso", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	loc = dev.Next(t)
	if loc == nil || loc.RequestType != "DeviceLocation" {
		t.Fatalf("after locate the device got %+v", loc)
	}
	dev.Answer(t, loc.UUID, applemdm.StatusAcknowledged, map[string]any{"Latitude": 38.9, "Longitude": -77.1,
		"Timestamp": time.Now().Add(time.Hour)})
	got = incidents.LastDeviceLocation(timeline(t, e.st, incID))
	if got == nil || got.Latitude != 38.9 || got.Accuracy != nil || got.DeviceTime == nil ||
		!got.DeviceTime.Equal(got.ReceivedAt.Truncate(time.Second)) {
		t.Fatalf("second location %+v", got)
	}
	if got := strings.Join(e.actions(t, "device:"+id), ","); !strings.HasSuffix(got,
		applemdm.ActionLostModeAnswer+","+applemdm.ActionLocated+","+applemdm.ActionLostMode+","+applemdm.ActionLocated) {
		t.Fatalf("audit %s", got)
	}
}

// TestLostModeAnswersThatChangeTheRecord: a refused enable or an
// acknowledged disable releases the enrollment's lost mode; a location
// out of range is refused on the timeline; another device cannot write
// on the incident.
func TestLostModeAnswersThatChangeTheRecord(t *testing.T) {
	e, dev, id, lm, incID := lostEnv(t, "00008110-000BBBBBBBBBBBB2")
	ctx := t.Context()
	if err := lm.Enable(ctx, id, incID, "laso", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	c := dev.Next(t)
	loc := dev.Answer(t, c.UUID, applemdm.StatusError, map[string]any{"ErrorChain": []map[string]any{
		{"ErrorCode": 12067, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "Device is not supervised", "USEnglishDescription": "Device is not supervised"}}})
	if en, _ := e.st.GetAppleEnrollment(ctx, id); en.LostModeIncident != "" || en.LostModeAt != nil {
		t.Fatalf("a refused enable left %+v", en)
	}
	dev.Answer(t, loc.UUID, applemdm.StatusAcknowledged, map[string]any{"Latitude": 91.0, "Longitude": 0.0})
	tl := timeline(t, e.st, incID)
	if actionsOf(tl) != "lost_mode,lost_mode_error,lost_mode_error" || !strings.Contains(tl[1].Detail, "not supervised") ||
		!strings.Contains(tl[2].Detail, "latitude") || incidents.LastDeviceLocation(tl) != nil {
		t.Fatalf("timeline %s: %+v", actionsOf(tl), tl)
	}

	// Another enrolled device answers a locate it never got, naming
	// this incident: nothing lands on it.
	other := appletest.IssuedBy(t, e.ca, e.url, "00008110-000CCCCCCCCCCCC3", "iPhone15,2")
	other.Authenticate(t, "Car 9")
	other.Answer(t, "DeviceLocation."+incID+".forged", applemdm.StatusAcknowledged, map[string]any{"Latitude": 1.0, "Longitude": 2.0})
	if n := len(timeline(t, e.st, incID)); n != 3 {
		t.Fatalf("another device's answer wrote on the incident: %d events", n)
	}
	if !strings.Contains(e.log.String(), "lost-mode answer for no incident of the device") {
		t.Fatalf("the forged answer did not reach lost mode's check; log:\n%s", e.log)
	}

	if err := lm.Enable(ctx, id, incID, "laso", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	c = dev.Next(t)
	dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil) // and DeviceLocation stays queued
	if err := lm.Disable(ctx, id, incID, "laso", "10.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if en, _ := e.st.GetAppleEnrollment(ctx, id); en.LostModeIncident != incID {
		t.Fatalf("lost mode released before the device acknowledged the disable: %+v", en)
	}
	// The second enable's DeviceLocation comes first; the device cannot
	// locate itself, and then acknowledges the disable.
	c = dev.Next(t)
	if c == nil || c.RequestType != "DeviceLocation" {
		t.Fatalf("next %+v, want the queued DeviceLocation", c)
	}
	c = dev.Answer(t, c.UUID, applemdm.StatusError, nil)
	if c == nil || c.RequestType != "DisableLostMode" || !strings.HasPrefix(c.UUID, "DisableLostMode."+incID+".") {
		t.Fatalf("next %+v, want DisableLostMode", c)
	}
	dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, nil)
	if en, _ := e.st.GetAppleEnrollment(ctx, id); en.LostModeIncident != "" {
		t.Fatalf("an acknowledged disable left %+v", en)
	}
	if got := actionsOf(timeline(t, e.st, incID)); !strings.HasSuffix(got, "lost_mode,lost_mode_enabled,lost_mode_disable,lost_mode_error,lost_mode_disabled") {
		t.Fatalf("timeline %s", got)
	}
}
