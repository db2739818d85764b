package incidents

import (
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

func TestReportClock(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	inc := &store.Incident{ID: "i1", CreatedAt: t0}
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	ns := []store.Notification{
		{IncidentID: "i1", Channel: "email", Recipient: "laso@pd.example"}, // not accepted
		{IncidentID: "i1", Channel: "email", Recipient: "it@pd.example", SentAt: at(55 * time.Second)},
		{IncidentID: "i1", Channel: "webhook", SentAt: at(40 * time.Second)},
		{IncidentID: "i1", About: "bluetooth_request", SentAt: at(time.Second)}, // about something else
	}
	rc := ReportClock(inc, ns, t0.Add(2*time.Hour))
	if rc.NotifiedAt == nil || rc.NotifiedIn != 40*time.Second || rc.Overdue || rc.Late || rc.Text() != "notified in 40 s" {
		t.Fatalf("%+v %q", rc, rc.Text())
	}
	rc = ReportClock(inc, ns[:1], t0.Add(59*time.Minute))
	if rc.Overdue || rc.Text() != "not yet notified" {
		t.Fatalf("before the hour: %+v", rc)
	}
	rc = ReportClock(inc, ns[:1], t0.Add(61*time.Minute))
	if !rc.Overdue || rc.NotifiedAt != nil {
		t.Fatalf("past the hour: %+v", rc)
	}
	late := []store.Notification{{IncidentID: "i1", SentAt: at(65 * time.Minute)}}
	rc = ReportClock(inc, late, t0.Add(2*time.Hour))
	if rc.Overdue || !rc.Late || rc.Text() != "notified in 1 h 5 min (late: the limit is 1 h)" {
		t.Fatalf("late: %+v %q", rc, rc.Text())
	}
}
