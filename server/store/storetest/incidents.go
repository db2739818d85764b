package storetest

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func incident(t *testing.T, st *store.Store, inc store.Incident, events ...store.IncidentEvent) *store.Incident {
	t.Helper()
	if inc.Status == "" {
		inc.Status = "open"
	}
	if inc.CreatedAt.IsZero() {
		inc.CreatedAt = now()
	}
	must(t, st.SaveIncident(t.Context(), &inc, events...))
	return &inc
}

func incidentIDs(is []store.Incident) []string {
	return ids(is, func(i store.Incident) string { return i.ID })
}

func eventActions(es []store.IncidentEvent) []string {
	return ids(es, func(e store.IncidentEvent) string { return e.IncidentID + ":" + e.Action })
}

func incidentContracts() []contract {
	return []contract{
		{"SaveIncident", []string{"SaveIncident", "GetIncident", "IncidentTimeline"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			lat, lon := 38.8977, -77.0365
			inc := incident(t, st, store.Incident{ID: "i1", DeviceID: "d1", Reporter: "officer", Kind: "lost", StartedAt: at,
				Latitude: &lat, Longitude: &lon, Description: "left in a cruiser"},
				store.IncidentEvent{At: at, Actor: "officer", Action: "reported"})
			got, err := st.GetIncident(t.Context(), "i1")
			if err != nil || got.Kind != "lost" || got.Description != "left in a cruiser" || *got.Latitude != lat || *got.Longitude != lon ||
				got.EndedAt != nil || got.ReportRef != nil {
				t.Fatalf("incident %+v %v", got, err)
			}
			sameTime(t, "started", got.StartedAt, at)
			inc.Status, inc.Severity, inc.EndedAt = "triaged", "high", &at
			must(t, st.SaveIncident(t.Context(), inc, store.IncidentEvent{At: at.Add(time.Minute), Actor: "laso", Action: "triaged"},
				store.IncidentEvent{At: at.Add(-time.Minute), Actor: "system", Action: "detected"}))
			got, _ = st.GetIncident(t.Context(), "i1")
			if got.Status != "triaged" || got.Severity != "high" || got.Reporter != "officer" {
				t.Fatalf("updated incident %+v", got)
			}
			samePtrTime(t, "ended", got.EndedAt, at)
			incident(t, st, store.Incident{ID: "i2"}, store.IncidentEvent{At: at, Action: "other"})
			es, err := st.IncidentTimeline(t.Context(), "i1")
			must(t, err)
			// Oldest first by time, whenever an event was written.
			sameIDs(t, "timeline", eventActions(es), "i1:detected", "i1:reported", "i1:triaged")
			sameTime(t, "event time", es[0].At, at.Add(-time.Minute))
			_, err = st.GetIncident(t.Context(), "nope")
			wantErr(t, "unknown incident", err, store.ErrNotFound)
		}},
		{"ListIncidents", []string{"ListIncidents", "OpenIncidentFor"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for i, s := range []string{"resolved", "closed", "open", "triaged"} {
				incident(t, st, store.Incident{ID: s, DeviceID: "d" + string(rune('0'+i/2)), Status: s, CreatedAt: at.Add(time.Duration(i) * time.Minute)})
			}
			is, err := st.ListIncidents(t.Context())
			must(t, err)
			sameIDs(t, "newest first", incidentIDs(is), "triaged", "open", "closed", "resolved")
			for d, want := range map[string]bool{"d0": false, "d1": true, "d9": false} {
				if open, err := st.OpenIncidentFor(t.Context(), d); err != nil || open != want {
					t.Fatalf("%s has an open incident: %v %v, want %v", d, open, err, want)
				}
			}
		}},
		{"DueEscalations", []string{"DueEscalations"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			past, later := at.Add(-time.Minute), at.Add(time.Minute)
			incident(t, st, store.Incident{ID: "due", EscalateAt: &past})
			incident(t, st, store.Incident{ID: "edge", EscalateAt: &at})
			incident(t, st, store.Incident{ID: "later", EscalateAt: &later})
			incident(t, st, store.Incident{ID: "ended", EscalateAt: &past, EndedAt: &past})
			incident(t, st, store.Incident{ID: "none"})
			is, err := st.DueEscalations(t.Context(), at)
			must(t, err)
			got := map[string]bool{}
			for _, i := range is {
				got[i.ID] = true
			}
			if len(is) != 2 || !got["due"] || !got["edge"] {
				t.Fatalf("due %v, want due and edge", incidentIDs(is))
			}
		}},
		{"AppendIncidentEvents", []string{"AppendIncidentEvents"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			incident(t, st, store.Incident{ID: "i1", DeviceID: "d1", Status: "reported", StartedAt: at},
				store.IncidentEvent{At: at, Actor: "officer", Action: "reported"})
			must(t, st.AppendIncidentEvents(t.Context(), "i1", store.IncidentEvent{At: at.Add(time.Minute), Actor: "device:d1", Action: "located"}))
			es, err := st.IncidentTimeline(t.Context(), "i1")
			must(t, err)
			sameIDs(t, "timeline", eventActions(es), "i1:reported", "i1:located")
			// The incident row is not written: a status changed since is kept.
			inc, _ := st.GetIncident(t.Context(), "i1")
			inc.Status = "resolved"
			must(t, st.SaveIncident(t.Context(), inc))
			must(t, st.AppendIncidentEvents(t.Context(), "i1", store.IncidentEvent{At: at.Add(2 * time.Minute), Action: "late"}))
			if got, _ := st.GetIncident(t.Context(), "i1"); got.Status != "resolved" {
				t.Fatalf("status %q after an append, want resolved", got.Status)
			}
			wantErr(t, "unknown incident", st.AppendIncidentEvents(t.Context(), "nope", store.IncidentEvent{At: at, Action: "x"}), store.ErrNotFound)
		}},
		{"IncidentByRef", []string{"IncidentByRef", "SaveIncident"}, func(t *testing.T, open Opener) {
			st := open(t)
			ref := "d1/frame-7"
			incident(t, st, store.Incident{ID: "i1", DeviceID: "d1", ReportRef: &ref})
			incident(t, st, store.Incident{ID: "api1"}) // API reports have no ref
			incident(t, st, store.Incident{ID: "api2"})
			inc, err := st.IncidentByRef(t.Context(), ref)
			if err != nil || inc.ID != "i1" {
				t.Fatalf("by ref: %+v %v", inc, err)
			}
			// A report resent after a lost ack cannot open a second incident.
			if err := st.SaveIncident(t.Context(), &store.Incident{ID: "i2", DeviceID: "d1", ReportRef: &ref, Status: "open"},
				store.IncidentEvent{Action: "reported"}); err == nil {
				t.Fatal("a second incident with the same report ref was stored")
			}
			if es, _ := st.IncidentTimeline(t.Context(), "i2"); len(es) != 0 {
				t.Fatalf("the refused incident's events were kept: %v", eventActions(es))
			}
			_, err = st.IncidentByRef(t.Context(), "d1/other")
			wantErr(t, "unknown ref", err, store.ErrNotFound)
		}},
		{"SetQuarantine", []string{"SetQuarantine"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			if ok, err := st.SetQuarantine(t.Context(), "d1", "i1", "", at); err != nil || !ok {
				t.Fatalf("quarantine: %v %v", ok, err)
			}
			d := device(t, st, "d1")
			if d.QuarantineIncident != "i1" {
				t.Fatalf("quarantined for %q", d.QuarantineIncident)
			}
			samePtrTime(t, "quarantined", d.QuarantinedAt, at)
			// A later incident takes over; lifting the first leaves it.
			st.SetQuarantine(t.Context(), "d1", "i2", "", at.Add(time.Minute))
			if ok, err := st.SetQuarantine(t.Context(), "d1", "", "i1", at); err != nil || ok {
				t.Fatalf("lifting an older incident's quarantine: %v %v", ok, err)
			}
			if d := device(t, st, "d1"); d.QuarantineIncident != "i2" || d.QuarantinedAt == nil {
				t.Fatalf("the later quarantine was lifted: %+v", d)
			}
			if ok, err := st.SetQuarantine(t.Context(), "d1", "", "i2", at); err != nil || !ok {
				t.Fatalf("lift: %v %v", ok, err)
			}
			if d := device(t, st, "d1"); d.QuarantineIncident != "" || d.QuarantinedAt != nil {
				t.Fatalf("still quarantined: %+v", d)
			}
			if ok, err := st.SetQuarantine(t.Context(), "nope", "i1", "", at); err != nil || ok {
				t.Fatalf("unknown device: %v %v", ok, err)
			}
		}},
		{"DevicesOwnedBy", []string{"DevicesOwnedBy"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d2", Name: "laptop", Owner: "o@pd"})
			enroll(t, st, store.Device{ID: "d1", Name: "laptop", Owner: "o@pd"})
			enroll(t, st, store.Device{ID: "d0", Name: "cruiser", Owner: "o@pd"})
			enroll(t, st, store.Device{ID: "gone", Owner: "o@pd", Status: store.StatusRevoked})
			enroll(t, st, store.Device{ID: "x", Owner: "other@pd"})
			enroll(t, st, store.Device{ID: "nobody"})
			ds, err := st.DevicesOwnedBy(t.Context(), "o@pd")
			must(t, err)
			sameIDs(t, "active, by name", deviceIDs(ds), "d0", "d1", "d2")
			// No owner is nobody's devices, not the unowned ones.
			if ds, err := st.DevicesOwnedBy(t.Context(), ""); err != nil || len(ds) != 0 {
				t.Fatalf("owner \"\": %v %v", deviceIDs(ds), err)
			}
		}},
		{"SaveIncidentForm", []string{"SaveIncidentForm", "GetIncidentForm"}, func(t *testing.T, open Opener) {
			st := open(t)
			incident(t, st, store.Incident{ID: "i1"})
			f, err := st.GetIncidentForm(t.Context(), "i1")
			if err != nil || f.IncidentID != "i1" || f.Cause != "" || f.FBICopySentAt != nil {
				t.Fatalf("a form nobody edited: %+v %v", f, err)
			}
			at := now()
			f.Cause, f.CJICompromised, f.Reimage, f.FBICopySentAt, f.UpdatedAt, f.UpdatedBy = "theft", "unknown", "required", &at, at, "laso"
			must(t, st.SaveIncidentForm(t.Context(), f, store.IncidentEvent{At: at, Actor: "laso", Action: "form.edited"}))
			f.PIICompromised = "no"
			must(t, st.SaveIncidentForm(t.Context(), f))
			got, err := st.GetIncidentForm(t.Context(), "i1")
			if err != nil || got.Cause != "theft" || got.CJICompromised != "unknown" || got.PIICompromised != "no" || got.UpdatedBy != "laso" {
				t.Fatalf("form %+v %v", got, err)
			}
			samePtrTime(t, "FBI copy", got.FBICopySentAt, at)
			es, _ := st.IncidentTimeline(t.Context(), "i1")
			sameIDs(t, "timeline", eventActions(es), "i1:form.edited")
		}},
		{"PostureNear", []string{"PostureNear"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			if p, err := st.PostureNear(t.Context(), "d1", at); err != nil || p != nil {
				t.Fatalf("no reports: %+v %v", p, err)
			}
			for _, off := range []time.Duration{-10 * time.Minute, 10 * time.Minute, 30 * time.Minute} {
				r := at.Add(off)
				report(t, st, "d1", "r"+off.String(), r, r)
			}
			for _, c := range []struct {
				at   time.Duration
				want string
			}{{-time.Hour, "r-10m0s"}, {0, "r-10m0s"}, {time.Minute, "r10m0s"}, {25 * time.Minute, "r30m0s"}, {time.Hour, "r30m0s"}} {
				p, err := st.PostureNear(t.Context(), "d1", at.Add(c.at))
				if err != nil || p == nil || p.ReportID != c.want {
					t.Fatalf("near %v: %+v %v, want %s (a tie goes to the earlier)", c.at, p, err, c.want)
				}
			}
		}},
		{"ClaimEscalation", []string{"ClaimEscalation"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			past, later := at.Add(-time.Minute), at.Add(time.Minute)
			due := incident(t, st, store.Incident{ID: "due", EscalateAt: &past})
			incident(t, st, store.Incident{ID: "later", EscalateAt: &later})
			incident(t, st, store.Incident{ID: "ended", EscalateAt: &past, EndedAt: &past})
			incident(t, st, store.Incident{ID: "none"})
			for id, want := range map[string]bool{"due": true, "later": false, "ended": false, "none": false, "nope": false} {
				if got, err := st.ClaimEscalation(t.Context(), id, at); err != nil || got != want {
					t.Fatalf("claim %s: %v %v, want %v", id, got, err, want)
				}
			}
			// Escalated (its deadline cleared) by whoever claimed it first,
			// it is claimed by nobody after.
			due.EscalateAt = nil
			must(t, st.SaveIncident(t.Context(), due))
			if got, err := st.ClaimEscalation(t.Context(), "due", at); err != nil || got {
				t.Fatalf("claim after the escalation: %v %v", got, err)
			}
		}},
	}
}
