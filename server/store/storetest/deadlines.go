package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func deadlineContracts() []contract {
	return []contract{
		{"SilentDevices", []string{"SilentDevices", "MarkConnected", "MarkDisconnected"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			old := at.Add(-time.Hour)
			for _, id := range []string{"unlocked", "locked", "online", "recent", "incident", "closed", "revoked", "relocked", "future"} {
				enroll(t, st, store.Device{ID: id})
			}
			// The state in force now is what counts: a spooled older report
			// does not change it, nor an entry dated in the future (written
			// before device clocks were checked).
			reportLock(t, st, "unlocked", "r1", old, old.Add(-time.Minute), "unlocked", 0)
			reportLock(t, st, "locked", "r1", old, old, "locked", 0)
			reportLock(t, st, "relocked", "r1", old, old.Add(-2*time.Minute), "unlocked", 0)
			reportLock(t, st, "relocked", "r2", old, old.Add(-time.Minute), "locked", 0)
			reportLock(t, st, "relocked", "r0", old, old.Add(-3*time.Minute), "unlocked", 0)
			must(t, st.DB().Create(&store.LockEvent{DeviceID: "future", At: at.AddDate(1, 0, 0), State: "locked"}).Error)
			for _, id := range []string{"online", "recent", "incident", "closed", "revoked", "future"} {
				reportLock(t, st, id, "r1", old, old, "unlocked", 0)
			}
			must(t, st.MarkConnected(t.Context(), "online", "10.0.0.1", old, ""))
			must(t, st.MarkDisconnected(t.Context(), "recent", at, ""))
			incident(t, st, store.Incident{ID: "i1", DeviceID: "incident", Status: "open"})
			incident(t, st, store.Incident{ID: "i2", DeviceID: "closed", Status: "closed"})
			_, err := st.RevokeDevice(t.Context(), "revoked", "lost", at)
			must(t, err)
			ds, err := st.SilentDevices(t.Context(), "unlocked", at.Add(-15*time.Minute), at)
			must(t, err)
			got := ids(ds, func(d store.Device) string { return d.ID })
			slices.Sort(got)
			if want := []string{"closed", "future", "unlocked"}; !slices.Equal(got, want) {
				t.Fatalf("silent unlocked devices %v, want %v", got, want)
			}
			for _, d := range ds {
				if d.Posture != "" || d.LastSeen == nil {
					t.Fatalf("device %s: posture %q, last seen %v", d.ID, d.Posture, d.LastSeen)
				}
			}
		}},
		{"DueFindingDevices", []string{"DueFindingDevices", "SaveFindings", "SetComplianceState"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for _, id := range []string{"due", "grace", "quarantined", "resolved", "revoked"} {
				enroll(t, st, store.Device{ID: id})
			}
			finding := func(dev string, firstSeen time.Time, grace time.Duration) store.Finding {
				return store.Finding{DeviceID: dev, Control: "disk_encryption", FirstSeen: firstSeen, LastSeen: firstSeen, Grace: grace}
			}
			must(t, st.SaveFindings(t.Context(), []store.Finding{finding("due", at.Add(-2*time.Hour), time.Hour),
				finding("grace", at.Add(-2*time.Hour), 3*time.Hour), finding("quarantined", at.Add(-2*time.Hour), time.Hour),
				finding("revoked", at.Add(-2*time.Hour), time.Hour)}, nil, at))
			must(t, st.SetComplianceState(t.Context(), "quarantined", "quarantined"))
			r := finding("resolved", at.Add(-2*time.Hour), time.Hour)
			must(t, st.SaveFindings(t.Context(), []store.Finding{r}, nil, at))
			fs, err := st.OpenFindings(t.Context(), "resolved")
			must(t, err)
			must(t, st.SaveFindings(t.Context(), nil, []uint64{fs[0].ID}, at))
			_, err = st.RevokeDevice(t.Context(), "revoked", "lost", at)
			must(t, err)
			got, err := st.DueFindingDevices(t.Context(), "quarantined", at)
			must(t, err)
			if want := []string{"due"}; !slices.Equal(got, want) {
				t.Fatalf("due %v, want %v", got, want)
			}
			// Three hours on, the finding in grace is due too.
			got, err = st.DueFindingDevices(t.Context(), "quarantined", at.Add(time.Hour))
			must(t, err)
			if want := []string{"due", "grace"}; !slices.Equal(got, want) {
				t.Fatalf("due an hour later %v, want %v", got, want)
			}
			// A finding saved before due_at existed is always a candidate.
			must(t, st.DB().Model(&store.Finding{}).Where("device_id = ?", "grace").Update("due_at", nil).Error)
			got, err = st.DueFindingDevices(t.Context(), "quarantined", at)
			must(t, err)
			if want := []string{"due", "grace"}; !slices.Equal(got, want) {
				t.Fatalf("with a finding without due_at %v, want %v", got, want)
			}
		}},
	}
}
