package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

type reportingJSON struct {
	DiscoveredAt      string   `json:"discovered_at"`
	NotifiedAt        *string  `json:"notified_at"`
	NotifiedInSeconds *float64 `json:"notified_in_seconds"`
	Overdue           bool     `json:"overdue"`
	Text              string   `json:"text"`
}

// TestIncidentReportingClock (issue 15, acceptance 6; IR-6): an incident
// shows its time to report once the real SMTP server has accepted a
// notification; with the SMTP server held down past one hour (an
// injected clock, not a real hour) the next incident shows as overdue in
// the API, in the list, on its page and on the console overview.
func TestIncidentReportingClock(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) { incidentReportingClock(t, dsn(t)) })
}

func incidentReportingClock(t *testing.T, dsn string) {
	addr := freePort(t)
	smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
	ic := &skewClock{}
	e := testenv.New(t, dsn, server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(200*time.Millisecond),
		server.WithIncidentClock(ic.now))
	lasoPW := addConsoleUser(t, e, "laso1@pd.example", "laso")
	addConsoleUser(t, e, "it@pd.example", "it-admin")
	laso, user := e.APIKey("laso"), e.APIKey("user")
	dir := e.MustEnroll()
	cfg, err := dir.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	report := func(where string) string {
		t.Helper()
		var inc struct{ ID string }
		if st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": cfg.DeviceID, "kind": "loss_of_control",
			"lock_state": "locked", "started_at": ic.now().UTC().Add(-2 * time.Minute), "location": where}, &inc); st != 201 {
			t.Fatalf("report: %d", st)
		}
		return inc.ID
	}
	type incident struct {
		Reporting     reportingJSON `json:"reporting"`
		Notifications []struct {
			Recipient  string  `json:"recipient"`
			AcceptedAt *string `json:"accepted_at"`
		} `json:"notifications"`
	}
	first := report("bus 14")
	var inc incident
	testenv.Eventually(t, 30*time.Second, "the notification accepted", func() bool {
		e.Do("GET", "/api/v1/incidents/"+first, laso, nil, &inc)
		return inc.Reporting.NotifiedAt != nil
	})
	if s := *inc.Reporting.NotifiedInSeconds; s < 0 || s > 30 || !strings.HasPrefix(inc.Reporting.Text, "notified in ") ||
		!strings.HasSuffix(inc.Reporting.Text, " s") || inc.Reporting.Overdue {
		t.Fatalf("reporting %+v", inc.Reporting)
	}
	accepted := 0
	for _, n := range inc.Notifications {
		if n.AcceptedAt != nil {
			accepted++
		}
	}
	if accepted == 0 || len(smtpd.messages()) == 0 {
		t.Fatalf("no accept time on the notifications: %+v", inc.Notifications)
	}

	// SMTP down; a second incident; an hour and a minute pass.
	smtpd.stop()
	second := report("courthouse lobby")
	e.Do("GET", "/api/v1/incidents/"+second, laso, nil, &inc)
	if inc.Reporting.Overdue || inc.Reporting.NotifiedAt != nil {
		t.Fatalf("fresh incident: %+v", inc.Reporting)
	}
	ic.advance(61 * time.Minute)
	e.Do("GET", "/api/v1/incidents/"+second, laso, nil, &inc)
	if !inc.Reporting.Overdue || !strings.HasPrefix(inc.Reporting.Text, "overdue") {
		t.Fatalf("an hour on with SMTP down: %+v", inc.Reporting)
	}
	var list struct {
		Incidents []struct {
			ID        string        `json:"id"`
			Reporting reportingJSON `json:"reporting"`
		} `json:"incidents"`
	}
	e.Do("GET", "/api/v1/incidents", laso, nil, &list)
	seen := 0
	for _, i := range list.Incidents {
		switch i.ID {
		case first:
			seen++
			if i.Reporting.Overdue || i.Reporting.NotifiedAt == nil {
				t.Errorf("the reported incident in the list: %+v", i.Reporting)
			}
		case second:
			seen++
			if !i.Reporting.Overdue {
				t.Errorf("the overdue incident in the list: %+v", i.Reporting)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("list: %+v", list)
	}
	b := newBrowserless(t, e)
	b.signIn("laso1@pd.example", lasoPW, time.Now)
	st, body, _ := b.get("/console/")
	if st != 200 {
		t.Fatalf("overview: %d", st)
	}
	_, flagged, _ := strings.Cut(body, `id="overdue-incidents"`)
	flagged, _, _ = strings.Cut(flagged, "</section>")
	if !strings.Contains(flagged, "/console/incidents/"+second) || strings.Contains(flagged, "/console/incidents/"+first) {
		t.Fatalf("overview's overdue incidents: %q", flagged)
	}
	if _, page, _ := b.get("/console/incidents/" + second); !strings.Contains(page, "overdue: no notification accepted within 1 h") {
		t.Fatal("incident page without overdue")
	}
	if _, page, _ := b.get("/console/incidents/" + first); !strings.Contains(page, "notified in ") {
		t.Fatal("incident page without the time to report")
	}
}
