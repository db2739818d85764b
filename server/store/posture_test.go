package store

import (
	"context"
	"testing"
	"time"
)

// The latest posture and the lock timeline follow trusted times: a
// posture_at left in the future (by a clock set ahead, before times were
// checked) does not pin the device's posture, and a spooled report fills
// in the past against the state in force then.
func TestSavePostureOrdersByTrustedTime(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	future := now.AddDate(1, 0, 0)
	if err := st.DB().Create(&Device{ID: "d1", Status: StatusActive, EnrolledAt: now.Add(-time.Hour), PostureAt: &future,
		Posture: `{"legacy":true}`}).Error; err != nil {
		t.Fatal(err)
	}
	st.DB().Create(&LockEvent{DeviceID: "d1", At: now.Add(-30 * time.Minute), State: "locked", Source: "t"})
	save := func(id string, received, trusted time.Time, lock string, skew int64) {
		t.Helper()
		r := &PostureReport{DeviceID: "d1", ReportID: id, ReceivedAt: received, CollectedAt: trusted, TrustedAt: trusted,
			ClockSkew: skew != 0, SkewSeconds: skew, Body: `{"id":"` + id + `"}`}
		if _, err := st.SavePosture(ctx, r, &LockEvent{DeviceID: "d1", State: lock, Source: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	// Spooled, ten minutes old, unlocked: its past time is kept.
	save("spooled", now, now.Add(-10*time.Minute), "unlocked", 0)
	d, _ := st.GetDevice(ctx, "d1")
	if d.Posture != `{"id":"spooled"}` || !d.PostureAt.Equal(now.Add(-10*time.Minute)) || d.PostureSkewSeconds != nil {
		t.Fatalf("a future posture_at kept the latest posture: %s at %v", d.Posture, d.PostureAt)
	}
	save("now", now.Add(time.Second), now.Add(time.Second), "locked", 0)
	// A late copy from the spool, older than the latest: it fills in the
	// past (compared with the state then, unlocked: no change) and does
	// not replace the latest posture.
	save("late", now.Add(2*time.Second), now.Add(-5*time.Minute), "unlocked", 0)
	d, _ = st.GetDevice(ctx, "d1")
	if d.Posture != `{"id":"now"}` {
		t.Fatalf("an older spooled report replaced the latest: %s", d.Posture)
	}
	tl, _ := st.LockTimeline(ctx, "d1")
	var got []string
	for _, e := range tl {
		got = append(got, e.State+"@"+e.At.Sub(now).String())
	}
	if len(tl) != 3 || tl[1].State != "unlocked" || !tl[1].At.Equal(now.Add(-10*time.Minute)) || tl[2].State != "locked" {
		t.Fatalf("timeline %v", got)
	}
	save("skewed", now.Add(3*time.Second), now.Add(3*time.Second), "unlocked", 31536000)
	d, _ = st.GetDevice(ctx, "d1")
	if d.PostureSkewSeconds == nil || *d.PostureSkewSeconds != 31536000 {
		t.Fatalf("the latest posture's skew is %v", d.PostureSkewSeconds)
	}
	tl, _ = st.LockTimeline(ctx, "d1")
	if last := tl[len(tl)-1]; !last.ClockSkew || last.SkewSeconds != 31536000 || !last.At.Equal(now.Add(3*time.Second)) {
		t.Fatalf("the skewed report's lock event: %+v", last)
	}
	cl, err := st.RecentClock(ctx, "d1", 2)
	if err != nil || len(cl) != 2 || cl[0].ReportID != "skewed" || !cl[0].ClockSkew || cl[1].ClockSkew || cl[0].Body != "" {
		t.Fatalf("recent clock %+v, %v", cl, err)
	}
}
