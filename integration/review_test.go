package integration

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/audit"
)

type reviewList struct {
	Interval string `json:"interval"`
	Overdue  bool   `json:"overdue"`
	Pending  int    `json:"pending"`
	Reviews  []struct {
		ID         string  `json:"id"`
		ReviewedAt *string `json:"reviewed_at"`
		Overdue    bool    `json:"overdue"`
		Entries    int     `json:"entries"`
		Sections   []struct {
			Key   string `json:"key"`
			Count int    `json:"count"`
		} `json:"sections"`
		Anomalies []struct {
			Kind string `json:"kind"`
			Text string `json:"text"`
		} `json:"anomalies"`
	} `json:"reviews"`
}

// TestWeeklyAuditReview (issue 15, acceptance 4; AU-6, policy F.2): a
// fixture week of audit entries, written through the audit log with a
// moved clock, plus real failed sign-ins, produces the review: its counts
// and highlighted anomalies are right, and it reaches every LASO through
// the real SMTP server. A review older than the interval shows as
// overdue in the API and on the console overview; the LASO records it
// (audit.reviewed) and the flag clears.
func TestWeeklyAuditReview(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) { weeklyAuditReview(t, dsn(t)) })
}

func weeklyAuditReview(t *testing.T, dsn string) {
	addr := freePort(t)
	smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
	rc := &skewClock{}
	e := testenv.New(t, dsn, server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(200*time.Millisecond),
		server.WithReviewClock(rc.now))
	lasoPW := addConsoleUser(t, e, "laso1@pd.example", "laso")
	addConsoleUser(t, e, "laso2@pd.example", "laso")
	addConsoleUser(t, e, "it@pd.example", "it-admin")
	laso, auditor := e.APIKey("laso"), e.APIKey("auditor")

	// Real failed sign-ins: seven wrong passwords for one account.
	for range 7 {
		b := newBrowserless(t, e)
		if st, _, _ := b.password("it@pd.example", "wrong-password"); st == 303 {
			t.Fatal("a wrong password signed in")
		}
	}
	// The fixture week, through the audit log on the server's database.
	start := time.Now()
	at := start
	fixture := audit.New(e.Server.Store, nil, audit.WithClock(func() time.Time { return at }))
	rec := func(en audit.Entry) {
		t.Helper()
		at = at.Add(4 * time.Hour)
		if err := fixture.Record(context.Background(), en); err != nil {
			t.Fatal(err)
		}
	}
	rec(audit.Entry{Actor: "user:laso1@pd.example", Source: "10.1.1.1", Action: "command.requested", Target: "device:d1", Outcome: audit.Success, Details: map[string]string{"kind": "wipe"}})
	rec(audit.Entry{Actor: "user:it@pd.example", Source: "10.1.1.2", Action: "command.requested", Target: "device:d2", Outcome: audit.Success, Details: map[string]string{"kind": "lock"}})
	rec(audit.Entry{Actor: "apikey:it", Source: "10.1.1.2", Action: audit.CertRevoked, Target: "device:d3", Outcome: audit.Success})
	rec(audit.Entry{Actor: "anonymous", Source: "203.0.113.5", Action: audit.GuessesRefused, Target: "api", Outcome: audit.Denied, Details: map[string]string{"refused": "40", "limit": "10 failures per 1m0s"}})
	rec(audit.Entry{Actor: "apikey:ci", Source: "10.1.1.3", Action: audit.APIDenied, Target: "POST /api/v1/devices/d1/commands", Outcome: audit.Denied})
	rec(audit.Entry{Actor: "anonymous", Source: "198.51.100.2", Action: audit.DeviceRefused, Target: "device:d9", Outcome: audit.Denied})
	rec(audit.Entry{Actor: "server", Action: "compliance.changed", Target: "device:d2", Outcome: audit.Success})
	rec(audit.Entry{Actor: "playbook", Action: "device.quarantined", Target: "device:d1", Outcome: audit.Success})
	rec(audit.Entry{Actor: "device:d2", Action: audit.DeviceClockSkew, Target: "device:d2", Outcome: audit.Success})
	rec(audit.Entry{Actor: "server", Action: "audit.failed", Target: "audit", Outcome: audit.Failure, Details: map[string]string{"failures": "2"}})

	var list reviewList
	if e.Do("GET", "/api/v1/audit/reviews", auditor, nil, &list); len(list.Reviews) != 0 || list.Interval != "168h0m0s" {
		t.Fatalf("before the week is over: %+v", list)
	}
	// The week ends: the server's sweep produces the review.
	rc.advance(7*24*time.Hour + time.Hour)
	testenv.Eventually(t, 20*time.Second, "the review produced", func() bool {
		e.Do("GET", "/api/v1/audit/reviews", auditor, nil, &list)
		return len(list.Reviews) == 1
	})
	rv := list.Reviews[0]
	counts := map[string]int{}
	for _, s := range rv.Sections {
		counts[s.Key] = s.Count
	}
	// Seven failures, and the lockout the fifth one caused.
	for k, n := range map[string]int{"sign_ins": 8, "denied": 2, "device_actions": 3, "refused_devices": 1,
		"compliance": 2, "clock_skew": 1, "audit_failures": 1} {
		if counts[k] != n {
			t.Errorf("section %s: %d, want %d", k, counts[k], n)
		}
	}
	kinds := map[string]bool{}
	for _, a := range rv.Anomalies {
		kinds[a.Kind] = true
		if a.Kind == "failed_sign_ins" && !strings.Contains(a.Text, "7 failed sign-ins for user:it@pd.example") {
			t.Errorf("failed sign-ins anomaly: %s", a.Text)
		}
	}
	for _, k := range []string{"wipe", "revocation", "guessing", "audit_failure", "failed_sign_ins", "lockout"} {
		if !kinds[k] {
			t.Errorf("anomaly %s not highlighted: %+v", k, rv.Anomalies)
		}
	}
	if list.Overdue || rv.Overdue || list.Pending != 1 {
		t.Errorf("a fresh review: %+v", list)
	}
	// The mail reaches both LASOs, and only them, with the anomalies.
	testenv.Eventually(t, 30*time.Second, "the review mailed to both LASOs", func() bool {
		got := 0
		for _, m := range smtpd.messages() {
			if strings.Contains(m, "Subject: [Cordon] Audit review due") && strings.Contains(m, fmt.Sprintf("ANOMALIES (%d)", len(rv.Anomalies))) &&
				(strings.Contains(m, "To: laso1@pd.example") || strings.Contains(m, "To: laso2@pd.example")) {
				got++
			}
			if strings.Contains(m, "Audit review") && strings.Contains(m, "To: it@pd.example") {
				t.Fatal("the review went to IT")
			}
		}
		return got == 2
	})

	// An interval later, not recorded: overdue, in the API and on the
	// console overview (the next week's review is produced meanwhile).
	rc.advance(7 * 24 * time.Hour)
	testenv.Eventually(t, 20*time.Second, "overdue", func() bool {
		e.Do("GET", "/api/v1/audit/reviews", auditor, nil, &list)
		return list.Overdue && len(list.Reviews) == 2
	})
	b := newBrowserless(t, e)
	b.signIn("laso1@pd.example", lasoPW, time.Now)
	if st, body, _ := b.get("/console/"); st != 200 || !strings.Contains(body, `id="review-overdue"`) {
		t.Fatalf("overview without the overdue review: %d", st)
	}
	st, body, _ := b.get("/console/reviews")
	if st != 200 || !strings.Contains(body, "[wipe]") || !strings.Contains(body, `id="review-overdue"`) {
		t.Fatalf("review page: %d %.2000s", st, body)
	}
	// The LASO records the older one from the console, the newer through the API.
	old := list.Reviews[1].ID
	if st, _, loc := b.post("/console/reviews/"+old, url.Values{"note": {"wipe d1 was the LASO's; lockout of it@ was a forgotten password"}}); st != 303 {
		t.Fatalf("record from the console: %d %s", st, loc)
	}
	if st := e.Do("POST", "/api/v1/audit/reviews", auditor, map[string]any{"id": list.Reviews[0].ID, "note": "x"}, nil); st != 403 {
		t.Fatalf("an auditor recorded a review: %d", st)
	}
	if st := e.Do("POST", "/api/v1/audit/reviews", laso, map[string]any{"id": list.Reviews[0].ID, "note": "quiet week"}, nil); st != 200 {
		t.Fatalf("record through the API: %d", st)
	}
	if st := e.Do("POST", "/api/v1/audit/reviews", laso, map[string]any{"id": old, "note": "again"}, nil); st != 409 {
		t.Fatalf("recorded twice: %d", st)
	}
	e.Do("GET", "/api/v1/audit/reviews", auditor, nil, &list)
	if list.Overdue || list.Pending != 0 {
		t.Fatalf("after recording: %+v", list)
	}
	if _, body, _ := b.get("/console/"); strings.Contains(body, `id="review-overdue"`) {
		t.Fatal("the overview still shows a review overdue")
	}
	done := e.Audit("audit.reviewed")
	if len(done) != 2 {
		t.Fatalf("audit.reviewed entries: %+v", done)
	}
	for _, en := range done {
		if !strings.HasPrefix(en.Target, "review:") || en.Details["note"] == "" || en.Outcome != "success" {
			t.Errorf("entry %+v", en)
		}
	}
	if got := fmt.Sprint(done[0].Actor, done[1].Actor); !strings.Contains(got, "laso1@pd.example") {
		t.Errorf("actors %s", got)
	}
}
