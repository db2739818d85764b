package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func metricContracts() []contract {
	return []contract{
		{"DeviceCounts", []string{"DeviceCounts"}, func(t *testing.T, open Opener) {
			st := open(t)
			rows, err := st.DeviceCounts(t.Context())
			must(t, err)
			if len(rows) != 0 {
				t.Fatalf("empty store: %v", rows)
			}
			enroll(t, st, store.Device{ID: "a", Platform: "linux/amd64"})
			enroll(t, st, store.Device{ID: "b", Platform: "linux/amd64"})
			enroll(t, st, store.Device{ID: "c", Platform: "linux/amd64"})
			enroll(t, st, store.Device{ID: "d", Platform: "ios"})
			enroll(t, st, store.Device{ID: "gone", Platform: "ios"})
			must(t, st.MarkConnected(t.Context(), "a", "10.0.0.1", now(), ""))
			must(t, st.MarkConnected(t.Context(), "b", "10.0.0.2", now(), ""))
			must(t, st.SetComplianceState(t.Context(), "a", "compliant"))
			must(t, st.SetComplianceState(t.Context(), "b", "compliant"))
			must(t, st.SetComplianceState(t.Context(), "c", "noncompliant"))
			// Held by an incident: quarantined whatever was recorded.
			must(t, st.SetComplianceState(t.Context(), "d", "compliant"))
			if _, err := st.SetQuarantine(t.Context(), "d", "i1", "", now()); err != nil {
				t.Fatal(err)
			}
			if _, err := st.RevokeDevice(t.Context(), "gone", "lost", now()); err != nil {
				t.Fatal(err)
			}
			rows, err = st.DeviceCounts(t.Context())
			must(t, err)
			got := make([]string, 0, len(rows))
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s/%s/%v=%d", r.Platform, r.Compliance, r.Online, r.Count))
			}
			slices.Sort(got)
			sameIDs(t, "counts", got, "ios/quarantined/false=1", "linux/amd64/compliant/true=2", "linux/amd64/noncompliant/false=1")
			enroll(t, st, store.Device{ID: "new", Platform: "windows/amd64"})
			rows, _ = st.DeviceCounts(t.Context())
			if !slices.Contains(rows, store.DeviceCount{Platform: "windows/amd64", Compliance: "unknown", Count: 1}) {
				t.Fatalf("a device never evaluated is unknown: %v", rows)
			}
		}},
		{"OpenIncidentCounts", []string{"OpenIncidentCounts", "UnreportedIncidents"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			old := at.Add(-2 * time.Hour)
			incident(t, st, store.Incident{ID: "i1", Category: "unlocked", Severity: "high", Status: "reported", CreatedAt: old})
			incident(t, st, store.Incident{ID: "i2", Category: "unlocked", Severity: "high", Status: "triaged", CreatedAt: old})
			incident(t, st, store.Incident{ID: "i3", Category: "locked_minimal", Severity: "low", Status: "contained", CreatedAt: at})
			incident(t, st, store.Incident{ID: "i4", Category: "locked_minimal", Severity: "low", Status: "resolved", CreatedAt: old})
			incident(t, st, store.Incident{ID: "i5", Category: "total_loss", Severity: "critical", Status: "closed", CreatedAt: old})
			rows, err := st.OpenIncidentCounts(t.Context())
			must(t, err)
			got := make([]string, 0, len(rows))
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s/%s=%d", r.Category, r.Severity, r.Count))
			}
			slices.Sort(got)
			sameIDs(t, "open", got, "locked_minimal/low=1", "unlocked/high=2")

			// Reported: an accepted message about the incident itself.
			// An unsent one, or one about something else, does not count.
			must(t, st.QueueNotifications(t.Context(), []store.Notification{
				{ID: "n1", IncidentID: "i1", Channel: "email", CreatedAt: old, NextAttempt: old, SentAt: &at},
				{ID: "n2", IncidentID: "i2", Channel: "email", CreatedAt: old, NextAttempt: old},
				{ID: "n3", IncidentID: "i2", About: "bluetooth_request", Channel: "email", CreatedAt: old, NextAttempt: old, SentAt: &at},
			}))
			n, err := st.UnreportedIncidents(t.Context(), at.Add(-time.Hour))
			must(t, err)
			if n != 1 {
				t.Fatalf("unreported an hour after creation: %d, want 1 (i2)", n)
			}
			if n, _ = st.UnreportedIncidents(t.Context(), at); n != 2 {
				t.Fatalf("unreported by now: %d, want 2 (i2, i3)", n)
			}
		}},
		{"Outbox", []string{"Outbox"}, func(t *testing.T, open Opener) {
			st := open(t)
			rows, err := st.Outbox(t.Context())
			must(t, err)
			if len(rows) != 0 {
				t.Fatalf("empty outbox: %v", rows)
			}
			at := now()
			must(t, st.QueueNotifications(t.Context(), []store.Notification{
				{ID: "sent", Channel: "email", CreatedAt: at.Add(-3 * time.Hour), NextAttempt: at, SentAt: &at},
				{ID: "e1", Channel: "email", CreatedAt: at.Add(-20 * time.Minute), NextAttempt: at},
				{ID: "e2", Channel: "email", CreatedAt: at.Add(-time.Minute), NextAttempt: at},
				{ID: "w1", Channel: "webhook", CreatedAt: at.Add(-90 * time.Second), NextAttempt: at},
			}))
			rows, err = st.Outbox(t.Context())
			must(t, err)
			slices.SortFunc(rows, func(a, b store.OutboxChannel) int { return len(a.Channel) - len(b.Channel) })
			if len(rows) != 2 || rows[0].Channel != "email" || rows[0].Depth != 2 || rows[1].Channel != "webhook" || rows[1].Depth != 1 {
				t.Fatalf("outbox %+v", rows)
			}
			sameTime(t, "oldest email", rows[0].Oldest, at.Add(-20*time.Minute))
			sameTime(t, "oldest webhook", rows[1].Oldest, at.Add(-90*time.Second))
		}},
		{"NearestDeviceCertExpiry", []string{"NearestDeviceCertExpiry"}, func(t *testing.T, open Opener) {
			st := open(t)
			got, err := st.NearestDeviceCertExpiry(t.Context())
			must(t, err)
			if got != nil {
				t.Fatalf("no devices: %v", got)
			}
			enroll(t, st, store.Device{ID: "a"}) // cert-a: now + 24 h
			enroll(t, st, store.Device{ID: "gone"})
			if _, err := st.RevokeDevice(t.Context(), "gone", "lost", now()); err != nil {
				t.Fatal(err)
			}
			// Sooner, but revoked with its device: it does not count.
			must(t, st.DB().Model(&store.Certificate{}).Where("serial = ?", "cert-gone").Update("not_after", now().Add(time.Hour)).Error)
			c, err := st.GetCertificate(t.Context(), "cert-a")
			must(t, err)
			got, err = st.NearestDeviceCertExpiry(t.Context())
			must(t, err)
			if got == nil {
				t.Fatal("one active device: no expiry")
			}
			sameTime(t, "nearest", *got, c.NotAfter)
		}},
	}
}
