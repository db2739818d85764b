package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func findingKeys(fs []store.Finding) []string {
	return ids(fs, func(f store.Finding) string { return f.DeviceID + "/" + f.Control + "/" + f.Subject })
}

func complianceContracts() []contract {
	return []contract{
		{"SaveFindings", []string{"SaveFindings", "OpenFindings", "AllOpenFindings", "FindingHistory", "SetFindingAction"},
			func(t *testing.T, open Opener) {
				st := open(t)
				at := now()
				fs := []store.Finding{
					{DeviceID: "d1", Control: "patch", Subject: "kernel", Severity: "high", Grace: 72 * time.Hour, FirstSeen: at, LastSeen: at},
					{DeviceID: "d1", Control: "disk", Subject: "root", Unknown: true, FirstSeen: at.Add(time.Minute), LastSeen: at},
					{DeviceID: "d1", Control: "bluetooth", Subject: "AA:BB", FirstSeen: at.Add(2 * time.Minute), LastSeen: at},
					{DeviceID: "d0", Control: "patch", Subject: "", FirstSeen: at, LastSeen: at},
				}
				must(t, st.SaveFindings(t.Context(), fs, nil, at))
				for _, f := range fs {
					if f.ID == 0 {
						t.Fatal("a new finding has no id after SaveFindings")
					}
				}
				open1, err := st.OpenFindings(t.Context(), "d1")
				must(t, err)
				sameIDs(t, "open, by control and subject", findingKeys(open1), "d1/bluetooth/AA:BB", "d1/disk/root", "d1/patch/kernel")
				p := open1[2]
				if p.Grace != 72*time.Hour || p.Severity != "high" || !p.Deadline().Equal(at.Add(72*time.Hour)) || !open1[1].Unknown {
					t.Fatalf("finding read back as %+v", p)
				}
				// One evaluation later: patch still fails (updated), bluetooth
				// is fixed (resolved).
				p.LastSeen, p.Message = at.Add(time.Hour), "still old"
				must(t, st.SaveFindings(t.Context(), []store.Finding{p}, []uint64{open1[0].ID}, at.Add(time.Hour)))
				open1, err = st.OpenFindings(t.Context(), "d1")
				must(t, err)
				sameIDs(t, "open after", findingKeys(open1), "d1/disk/root", "d1/patch/kernel")
				if open1[1].ID != p.ID || open1[1].Message != "still old" {
					t.Fatalf("update made %+v", open1[1])
				}
				sameTime(t, "last seen", open1[1].LastSeen, at.Add(time.Hour))
				all, err := st.AllOpenFindings(t.Context())
				must(t, err)
				sameIDs(t, "all open, by device", findingKeys(all), "d0/patch/", "d1/disk/root", "d1/patch/kernel")
				hist, err := st.FindingHistory(t.Context(), "d1", 10)
				must(t, err)
				sameIDs(t, "history, newest first", findingKeys(hist), "d1/bluetooth/AA:BB", "d1/disk/root", "d1/patch/kernel")
				samePtrTime(t, "resolved at", hist[0].ResolvedAt, at.Add(time.Hour))
				if hist, _ := st.FindingHistory(t.Context(), "d1", 1); len(hist) != 1 {
					t.Fatalf("limit 1: %d findings", len(hist))
				}
				must(t, st.SetFindingAction(t.Context(), p.ID, "cmd-1"))
				if open1, _ = st.OpenFindings(t.Context(), "d1"); open1[1].Action != "cmd-1" {
					t.Fatalf("action %q", open1[1].Action)
				}
			}},
		{"SaveProfileDoc", []string{"SaveProfileDoc", "GetProfileDoc", "ListProfileDocs"}, func(t *testing.T, open Opener) {
			st := open(t)
			at := now()
			for _, n := range []string{"strict", "baseline"} {
				must(t, st.SaveProfileDoc(t.Context(), &store.ProfileDoc{Name: n, Document: "v1 " + n, UpdatedAt: at, UpdatedBy: "it"}))
			}
			before := now()
			must(t, st.SaveProfileDoc(t.Context(), &store.ProfileDoc{Name: "strict", Document: "v2", UpdatedAt: at.Add(time.Hour), UpdatedBy: "it2"}))
			p, err := st.GetProfileDoc(t.Context(), "strict")
			if err != nil || p.Document != "v2" || p.UpdatedBy != "it2" {
				t.Fatalf("saved twice: %+v %v", p, err)
			}
			// UpdatedAt is the store's clock at the save (gorm's), not the
			// caller's.
			if p.UpdatedAt.Before(before) || p.UpdatedAt.After(now()) {
				t.Fatalf("updated at %v, want the time of the save (after %v)", p.UpdatedAt, before)
			}
			ps, err := st.ListProfileDocs(t.Context())
			must(t, err)
			sameIDs(t, "by name", ids(ps, func(p store.ProfileDoc) string { return p.Name }), "baseline", "strict")
			_, err = st.GetProfileDoc(t.Context(), "nope")
			wantErr(t, "unknown profile", err, store.ErrNotFound)
		}},
		{"EnsureProfile", []string{"EnsureProfile", "GroupProfile"}, func(t *testing.T, open Opener) {
			st := open(t)
			_, err := st.GroupProfile(t.Context(), "")
			wantErr(t, "no default group yet", err, store.ErrNotFound)
			must(t, st.EnsureProfile(t.Context(), &store.ProfileDoc{Name: "baseline", Document: "shipped", UpdatedAt: now()}))
			if p, err := st.GroupProfile(t.Context(), ""); err != nil || p != "baseline" {
				t.Fatalf("\"\" is the default group: %q %v", p, err)
			}
			// IT edits the profile and points the default group elsewhere;
			// the next start's EnsureProfile undoes neither.
			must(t, st.SaveProfileDoc(t.Context(), &store.ProfileDoc{Name: "baseline", Document: "edited", UpdatedAt: now()}))
			must(t, st.SaveGroup(t.Context(), &store.Group{Name: store.DefaultGroup, Profile: "strict"}))
			must(t, st.EnsureProfile(t.Context(), &store.ProfileDoc{Name: "baseline", Document: "shipped", UpdatedAt: now()}))
			if p, _ := st.GetProfileDoc(t.Context(), "baseline"); p.Document != "edited" {
				t.Fatalf("EnsureProfile overwrote IT's edit: %q", p.Document)
			}
			if p, _ := st.GroupProfile(t.Context(), store.DefaultGroup); p != "strict" {
				t.Fatalf("EnsureProfile repointed the default group to %q", p)
			}
			_, err = st.GroupProfile(t.Context(), "nope")
			wantErr(t, "unknown group", err, store.ErrNotFound)
			// Servers starting together on a new database all ensure the
			// baseline at once; none may fail its start on the others' row.
			fresh := open(t)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs[i] = fresh.EnsureProfile(t.Context(), &store.ProfileDoc{Name: "baseline", Document: "shipped", UpdatedAt: now()})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Fatalf("EnsureProfile %d of 8 at once: %v", i, err)
				}
			}
			if p, err := fresh.GroupProfile(t.Context(), ""); err != nil || p != "baseline" {
				t.Fatalf("default group after concurrent starts: %q %v", p, err)
			}
		}},
		{"SaveGroup", []string{"SaveGroup", "ListGroups", "GroupProfile"}, func(t *testing.T, open Opener) {
			st := open(t)
			for _, g := range []store.Group{{Name: "patrol", Profile: "strict"}, {Name: "admin", Profile: "baseline"},
				{Name: "patrol", Profile: "relaxed"}} {
				must(t, st.SaveGroup(t.Context(), &g))
			}
			gs, err := st.ListGroups(t.Context())
			must(t, err)
			sameIDs(t, "groups", ids(gs, func(g store.Group) string { return g.Name + ":" + g.Profile }), "admin:baseline", "patrol:relaxed")
			if p, err := st.GroupProfile(t.Context(), "patrol"); err != nil || p != "relaxed" {
				t.Fatalf("group profile %q %v", p, err)
			}
		}},
		{"EvaluatedFingerprint", []string{"MarkEvaluated", "EvaluatedFingerprint", "ForgetEvaluations"}, func(t *testing.T, open Opener) {
			st := open(t)
			for _, id := range []string{"d1", "d2", "d3"} {
				enroll(t, st, store.Device{ID: id})
				if fp, err := st.EvaluatedFingerprint(t.Context(), id); err != nil || fp != "" {
					t.Fatalf("never evaluated: %q %v", fp, err)
				}
			}
			at := now()
			fps := map[string]string{"d1": strings.Repeat("a", 64), "d2": strings.Repeat("b", 64), "d3": strings.Repeat("c", 64)}
			for id, fp := range fps {
				must(t, st.MarkEvaluated(t.Context(), id, at, fp))
			}
			has := func(want map[string]string) {
				t.Helper()
				for id, w := range want {
					if fp, err := st.EvaluatedFingerprint(t.Context(), id); err != nil || fp != w {
						t.Fatalf("%s: fingerprint %q %v, want %q", id, fp, err, w)
					}
				}
			}
			has(fps)
			samePtrTime(t, "evaluated", device(t, st, "d1").ComplianceAt, at)
			must(t, st.ForgetEvaluations(t.Context(), "d1", "d3"))
			has(map[string]string{"d1": "", "d2": fps["d2"], "d3": ""})
			must(t, st.MarkEvaluated(t.Context(), "d1", at, fps["d1"]))
			must(t, st.ForgetEvaluations(t.Context()))
			has(map[string]string{"d1": "", "d2": "", "d3": ""})
			_, err := st.EvaluatedFingerprint(t.Context(), "nope")
			wantErr(t, "unknown device", err, store.ErrNotFound)
		}},
		{"SetDeviceGroup", []string{"SetDeviceGroup", "MarkEvaluated", "SetComplianceState"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			must(t, st.SetDeviceGroup(t.Context(), "d1", "patrol"))
			must(t, st.MarkEvaluated(t.Context(), "d1", at, ""))
			must(t, st.SetComplianceState(t.Context(), "d1", "grace"))
			d := device(t, st, "d1")
			if d.GroupName != "patrol" || d.ComplianceState != "grace" {
				t.Fatalf("device %+v", d)
			}
			samePtrTime(t, "evaluated", d.ComplianceAt, at)
			wantErr(t, "unknown device", st.SetDeviceGroup(t.Context(), "nope", "patrol"), store.ErrNotFound)
		}},
	}
}
