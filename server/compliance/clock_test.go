package compliance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type nopAudit struct{}

func (nopAudit) Record(context.Context, audit.Entry) error                   { return nil }
func (nopAudit) RecordTx(context.Context, audit.Appender, audit.Entry) error { return nil }

// Repeated skew is a finding: one skewed report is only flagged, three of
// the last ten open the clock finding (moderate, 24 h grace, running by
// the server's clock), and it resolves once the clock has been right for
// long enough that fewer than three of the last ten are skewed.
func TestRepeatedClockSkewIsAFinding(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := now
	svc := New(st, nopAudit{}, WithClock(func() time.Time { return clock }))
	if err := svc.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Create(&store.Device{ID: "d1", Status: store.StatusActive, EnrolledAt: now.Add(-time.Hour)}).Error; err != nil {
		t.Fatal(err)
	}
	n := 0
	report := func(skew int64) {
		t.Helper()
		n++
		clock = clock.Add(time.Minute)
		pos := good()
		pos.Bluetooth = nil // no allow-list here
		pos.CollectedAt = clock.Add(time.Duration(skew) * time.Second)
		if _, err := st.SavePosture(ctx, &store.PostureReport{DeviceID: "d1", ReportID: fmt.Sprint("r", n), ReceivedAt: clock,
			CollectedAt: pos.CollectedAt, TrustedAt: clock, ClockSkew: skew != 0, SkewSeconds: skew, Body: "{}"}, nil); err != nil {
			t.Fatal(err)
		}
		if err := svc.Evaluate(ctx, "d1", pos); err != nil {
			t.Fatal(err)
		}
	}
	clockFinding := func() *store.Finding {
		st, err := svc.State(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range st.Findings {
			if f.Control == CtlClock {
				return &f
			}
		}
		return nil
	}
	year := int64(365 * 86400)
	report(0)
	report(year)
	report(0)
	report(year)
	if f := clockFinding(); f != nil {
		t.Fatalf("two skewed reports of four opened %+v", f)
	}
	report(-2 * 86400) // before enrollment
	f := clockFinding()
	if f == nil {
		t.Fatal("three skewed reports of five opened no clock finding")
	}
	if f.Severity != "moderate" || f.CJIS != "5.4 [AU-8]" || f.Grace != 24*time.Hour || !f.FirstSeen.Equal(clock) ||
		!strings.Contains(f.Message, "3 of its last 5") || !strings.Contains(f.Message, "365 days ahead") {
		t.Fatalf("clock finding %+v", f)
	}
	if s, _ := svc.State(ctx, "d1"); s.State != StateNoncompliant {
		t.Fatalf("state %s, want noncompliant (in grace): %v", s.State, s.Reasons)
	}
	// The same report body again, honest now: evaluated (the clock record
	// changed), and the finding stays while 3 of the last 10 are skewed.
	for i := 0; i < 6; i++ { // reports 6 to 11: 2, 4 and 5 of the last ten skewed
		report(0)
	}
	if clockFinding() == nil {
		t.Fatal("the finding resolved with 3 of the last 10 reports skewed")
	}
	report(0) // report 2, the first skewed one, drops out of the last ten
	if f := clockFinding(); f != nil {
		t.Fatalf("2 of the last 10 skewed, finding still open: %+v", f)
	}
	// Past the grace the clock finding quarantines like any other.
	for i := 0; i < 3; i++ {
		report(year)
	}
	clock = clock.Add(25 * time.Hour)
	if s, _ := svc.State(ctx, "d1"); s.State != StateQuarantined {
		t.Fatalf("state %s a day after, want quarantined", s.State)
	}
}
