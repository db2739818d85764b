package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// report saves a report of device d, received and trusted at the times
// given, with body {"id":"<id>"}; it returns whether it was a duplicate.
func report(t *testing.T, st *store.Store, d, id string, received, trusted time.Time) bool {
	t.Helper()
	return reportLock(t, st, d, id, received, trusted, "", 0)
}

// reportLock is report with a lock state (none when "") and a clock skew.
func reportLock(t *testing.T, st *store.Store, d, id string, received, trusted time.Time, lock string, skew int64) bool {
	t.Helper()
	r := &store.PostureReport{DeviceID: d, ReportID: id, ReceivedAt: received, CollectedAt: trusted, TrustedAt: trusted,
		ClockSkew: skew != 0, SkewSeconds: skew, Body: `{"id":"` + id + `"}`}
	var ev *store.LockEvent
	if lock != "" {
		ev = &store.LockEvent{DeviceID: d, State: lock, Source: "test"}
	}
	dup, err := st.SavePosture(t.Context(), r, ev)
	must(t, err)
	return dup
}

func reportIDs(rs []store.PostureReport) []string {
	return ids(rs, func(r store.PostureReport) string { return r.ReportID })
}

func timeline(t *testing.T, st *store.Store, d string, base time.Time) []string {
	t.Helper()
	es, err := st.LockTimeline(t.Context(), d)
	must(t, err)
	return ids(es, func(e store.LockEvent) string { return e.State + "@" + e.At.Sub(base).String() })
}

func postureContracts() []contract {
	return []contract{
		{"SavePosture/duplicate", []string{"SavePosture", "PostureHistory"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			if dup := report(t, st, "d1", "r1", at, at); dup {
				t.Fatal("a first report read as a duplicate")
			}
			// The resend after a lost ack: a duplicate, and nothing changes.
			if dup := reportLock(t, st, "d1", "r1", at.Add(time.Minute), at.Add(time.Minute), "locked", 0); !dup {
				t.Fatal("the same report id twice was not a duplicate")
			}
			if dup := report(t, st, "d2", "r1", at, at); dup {
				t.Fatal("report ids are per device, yet another device's r1 was a duplicate")
			}
			hist, err := st.PostureHistory(t.Context(), "d1", 10)
			must(t, err)
			sameIDs(t, "history", reportIDs(hist), "r1")
			sameTime(t, "received", hist[0].ReceivedAt, at)
			d := device(t, st, "d1")
			if d.Posture != `{"id":"r1"}` {
				t.Fatalf("posture %s", d.Posture)
			}
			samePtrTime(t, "posture at", d.PostureAt, at)
			samePtrTime(t, "last seen", d.LastSeen, at)
			if tl := timeline(t, st, "d1", at); len(tl) != 0 {
				t.Fatalf("a duplicate's lock state was recorded: %v", tl)
			}
		}},
		{"SavePosture/trust", []string{"SavePosture"}, func(t *testing.T, open Opener) {
			// Without the caller's trust decision, a report is never dated
			// after its own receipt.
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			for _, r := range []store.PostureReport{
				{ReportID: "untrusted", ReceivedAt: at, CollectedAt: at.Add(-time.Minute)},
				{ReportID: "ahead", ReceivedAt: at, CollectedAt: at.Add(time.Hour), TrustedAt: at.Add(time.Hour)},
			} {
				r.DeviceID = "d1"
				_, err := st.SavePosture(t.Context(), &r, nil)
				must(t, err)
			}
			hist, _ := st.PostureHistory(t.Context(), "d1", 10)
			sameIDs(t, "history", reportIDs(hist), "ahead", "untrusted")
			sameTime(t, "a clock ahead is trusted at receipt", hist[0].TrustedAt, at)
			sameTime(t, "collected is kept", hist[0].CollectedAt, at.Add(time.Hour))
			sameTime(t, "no decision: collected", hist[1].TrustedAt, at.Add(-time.Minute))
		}},
		{"SavePosture/trusted-time", []string{"SavePosture", "LockTimeline", "RecentClock", "GetDevice"}, func(t *testing.T, open Opener) {
			// The latest posture and the lock timeline follow trusted
			// times: a posture_at left in the future (by a clock set ahead,
			// before times were checked) does not pin the device's posture,
			// and a spooled report fills in the past against the state in
			// force then.
			st := open(t)
			at := now()
			future := at.AddDate(1, 0, 0)
			enroll(t, st, store.Device{ID: "d1", EnrolledAt: at.Add(-time.Hour)})
			must(t, st.DB().Model(&store.Device{}).Where("id = ?", "d1").
				Updates(map[string]any{"posture_at": future, "posture": `{"legacy":true}`}).Error)
			must(t, st.DB().Create(&store.LockEvent{DeviceID: "d1", At: at.Add(-30 * time.Minute), State: "locked", Source: "t"}).Error)
			// Spooled, ten minutes old, unlocked: its past time is kept.
			reportLock(t, st, "d1", "spooled", at, at.Add(-10*time.Minute), "unlocked", 0)
			d := device(t, st, "d1")
			if d.Posture != `{"id":"spooled"}` || d.PostureSkewSeconds != nil {
				t.Fatalf("a future posture_at kept the latest posture: %s", d.Posture)
			}
			samePtrTime(t, "posture at", d.PostureAt, at.Add(-10*time.Minute))
			reportLock(t, st, "d1", "now", at.Add(time.Second), at.Add(time.Second), "locked", 0)
			// A late copy from the spool, older than the latest: it fills in
			// the past (against the state then, unlocked: no change) and
			// does not replace the latest posture.
			reportLock(t, st, "d1", "late", at.Add(2*time.Second), at.Add(-5*time.Minute), "unlocked", 0)
			if d := device(t, st, "d1"); d.Posture != `{"id":"now"}` {
				t.Fatalf("an older spooled report replaced the latest: %s", d.Posture)
			}
			sameIDs(t, "timeline", timeline(t, st, "d1", at), "locked@-30m0s", "unlocked@-10m0s", "locked@1s")
			reportLock(t, st, "d1", "skewed", at.Add(3*time.Second), at.Add(3*time.Second), "unlocked", 31536000)
			if d := device(t, st, "d1"); d.PostureSkewSeconds == nil || *d.PostureSkewSeconds != 31536000 {
				t.Fatalf("the latest posture's skew is %v", d.PostureSkewSeconds)
			}
			es, _ := st.LockTimeline(t.Context(), "d1")
			if last := es[len(es)-1]; !last.ClockSkew || last.SkewSeconds != 31536000 || !last.At.Equal(at.Add(3*time.Second)) {
				t.Fatalf("the skewed report's lock event: %+v", last)
			}
			cl, err := st.RecentClock(t.Context(), "d1", 2)
			must(t, err)
			sameIDs(t, "recent clock, newest received first", reportIDs(cl), "skewed", "late")
			if !cl[0].ClockSkew || cl[0].SkewSeconds != 31536000 || cl[1].ClockSkew || cl[0].Body != "" {
				t.Fatalf("recent clock %+v", cl)
			}
			sameTime(t, "clock's trusted time", cl[1].TrustedAt, at.Add(-5*time.Minute))
		}},
		{"SavePosture/history-limit", []string{"SavePosture", "PostureHistory"}, func(t *testing.T, open Opener) {
			st := open(t, store.WithHistoryLimit(3))
			enroll(t, st, store.Device{ID: "d1"})
			enroll(t, st, store.Device{ID: "d2"})
			at := now()
			report(t, st, "d2", "other", at, at)
			for i := range 5 {
				r := at.Add(time.Duration(i) * time.Second)
				report(t, st, "d1", fmt.Sprint("r", i), r, r)
			}
			hist, err := st.PostureHistory(t.Context(), "d1", 10)
			must(t, err)
			sameIDs(t, "kept, newest first", reportIDs(hist), "r4", "r3", "r2")
			if hist[0].Body != `{"id":"r4"}` {
				t.Fatalf("body %s", hist[0].Body)
			}
			hist, _ = st.PostureHistory(t.Context(), "d1", 2)
			sameIDs(t, "limit", reportIDs(hist), "r4", "r3")
			hist, _ = st.PostureHistory(t.Context(), "d2", 10)
			sameIDs(t, "another device's history", reportIDs(hist), "other")
			// A pruned report id is no duplicate any more (the agent's spool
			// is far shorter than the history, so this never drops a resend).
			if report(t, st, "d1", "r4", at, at) != true || report(t, st, "d1", "r0", at, at) != false {
				t.Fatal("duplicates are the kept reports' ids")
			}
		}},
		{"LockTimeline", []string{"LockTimeline", "SavePosture"}, func(t *testing.T, open Opener) {
			st := open(t)
			enroll(t, st, store.Device{ID: "d1"})
			at := now()
			if tl := timeline(t, st, "d1", at); len(tl) != 0 {
				t.Fatalf("a new device's timeline: %v", tl)
			}
			for i, s := range []string{"locked", "locked", "unlocked", "unlocked", "locked"} {
				r := at.Add(time.Duration(i) * time.Minute)
				reportLock(t, st, "d1", fmt.Sprint("r", i), r, r, s, 0)
			}
			// Only changes are recorded, oldest first.
			sameIDs(t, "timeline", timeline(t, st, "d1", at), "locked@0s", "unlocked@2m0s", "locked@4m0s")
		}},
	}
}
