package review

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type mail struct {
	to            []string
	subject, body string
}

type mailer struct{ sent []mail }

func (m *mailer) Mail(_ context.Context, _, _, subject, body string, to []string) {
	m.sent = append(m.sent, mail{to, subject, body})
}

// week writes a fixture week of entries through the audit log, one a
// few hours apart starting at start.
func week(t *testing.T, log *audit.Log, c *clock, start time.Time) {
	t.Helper()
	at := start
	rec := func(e audit.Entry) {
		at = at.Add(3 * time.Hour)
		c.set(at)
		if err := log.Record(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for range 6 {
		rec(audit.Entry{Actor: "anonymous", Source: "10.0.0.9", Action: "console.login", Target: "user:sgt@pd.example", Outcome: audit.Failure})
	}
	rec(audit.Entry{Actor: "anonymous", Source: "10.0.0.8", Action: "console.login", Target: "user:ofc@pd.example", Outcome: audit.Failure})
	rec(audit.Entry{Actor: "user:ofc@pd.example", Source: "10.0.0.8", Action: "console.login", Target: "user:ofc@pd.example", Outcome: audit.Success})
	rec(audit.Entry{Actor: "server", Source: "10.0.0.9", Action: "user.locked", Target: "user:sgt@pd.example", Outcome: audit.Success})
	rec(audit.Entry{Actor: "apikey:ci", Source: "10.0.0.7", Action: audit.APIDenied, Target: "POST /api/v1/devices/d1/commands", Outcome: audit.Denied})
	rec(audit.Entry{Actor: "anonymous", Source: "203.0.113.5", Action: audit.GuessesRefused, Target: "api", Outcome: audit.Denied,
		Details: map[string]string{"refused": "40", "limit": "10 failures per 1m0s"}})
	rec(audit.Entry{Actor: "user:laso@pd.example", Action: "command.requested", Target: "device:d1", Outcome: audit.Success, Details: map[string]string{"kind": "wipe"}})
	rec(audit.Entry{Actor: "user:it@pd.example", Action: "command.requested", Target: "device:d2", Outcome: audit.Success, Details: map[string]string{"kind": "lock"}})
	rec(audit.Entry{Actor: "user:it@pd.example", Action: "command.requested", Target: "device:d2", Outcome: audit.Success, Details: map[string]string{"kind": "bluetooth_block"}})
	rec(audit.Entry{Actor: "apikey:it", Action: audit.CertRevoked, Target: "device:d3", Outcome: audit.Success})
	rec(audit.Entry{Actor: "user:ofc@pd.example", Action: "incident.reported", Target: "device:d1", Outcome: audit.Success, Details: map[string]string{"incident": "i1"}})
	rec(audit.Entry{Actor: "anonymous", Source: "198.51.100.2", Action: audit.DeviceRefused, Target: "device:d9", Outcome: audit.Denied})
	rec(audit.Entry{Actor: "server", Action: "compliance.changed", Target: "device:d2", Outcome: audit.Success})
	rec(audit.Entry{Actor: "playbook", Action: "device.quarantined", Target: "device:d1", Outcome: audit.Success})
	rec(audit.Entry{Actor: "device:d2", Action: audit.DeviceClockSkew, Target: "device:d2", Outcome: audit.Success})
	rec(audit.Entry{Actor: "server", Action: "audit.failed", Target: "audit", Outcome: audit.Failure, Details: map[string]string{"failures": "3"}})
	rec(audit.Entry{Actor: "device:d2", Action: audit.DeviceConnected, Target: "device:d2", Outcome: audit.Success})
}

func setup(t *testing.T) (*store.Store, *audit.Log, *clock, *mailer, *Service) {
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)}
	log := audit.New(st, nil, audit.WithClock(c.now))
	m := &mailer{}
	for _, e := range []string{"laso1@pd.example", "laso2@pd.example", "it@pd.example"} {
		role := "laso"
		if strings.HasPrefix(e, "it") {
			role = "it-admin"
		}
		if err := st.DB().Create(&store.User{ID: e, Email: e, Role: role}).Error; err != nil {
			t.Fatal(err)
		}
	}
	svc := New(st, log, WithClock(c.now), WithMailer(m))
	return st, log, c, m, svc
}

func TestAFixtureWeekProducesTheReview(t *testing.T) {
	ctx := context.Background()
	_, log, c, m, svc := setup(t)
	start := c.now()
	week(t, log, c, start)
	// Not a week yet: nothing.
	if rv, err := svc.Produce(ctx); err != nil || rv != nil {
		t.Fatalf("before the week is over: %v %v", rv, err)
	}
	c.set(start.Add(7*24*time.Hour + 3*time.Hour))
	rv, err := svc.Produce(ctx)
	if err != nil || rv == nil {
		t.Fatalf("produce: %v %v", rv, err)
	}
	st, err := svc.Status(ctx, 10)
	if err != nil || len(st.Reviews) != 1 {
		t.Fatal(st, err)
	}
	sum := st.Reviews[0].Summary
	counts := map[string]int{}
	for _, s := range sum.Sections {
		counts[s.Key] = s.Count
	}
	want := map[string]int{"sign_ins": 8, "denied": 2, "device_actions": 3, "incidents": 1, "refused_devices": 1,
		"compliance": 2, "clock_skew": 1, "audit_failures": 1}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s: %d, want %d (%v)", k, counts[k], n, counts)
		}
	}
	kinds := map[string]int{}
	for _, a := range sum.Anomalies {
		kinds[a.Kind]++
	}
	for _, k := range []string{"wipe", "revocation", "audit_failure", "guessing", "lockout", "failed_sign_ins"} {
		if kinds[k] != 1 {
			t.Errorf("anomaly %s: %d, want 1 (%v)", k, kinds[k], sum.Anomalies)
		}
	}
	// One failed sign-in for ofc is not an anomaly; six for sgt are.
	for _, a := range sum.Anomalies {
		if strings.Contains(a.Text, "ofc@") {
			t.Errorf("one failed sign-in flagged: %s", a.Text)
		}
	}
	// The mail went to both LASOs and nobody else, anomalies first.
	if len(m.sent) != 1 || strings.Join(m.sent[0].to, ",") != "laso1@pd.example,laso2@pd.example" {
		t.Fatalf("mail: %+v", m.sent)
	}
	if b := m.sent[0].body; strings.Index(b, "ANOMALIES (6)") > strings.Index(b, "Failed sign-ins and lockouts: 8") {
		t.Errorf("body:\n%s", b)
	}
	if st.Overdue || st.Pending != 1 {
		t.Errorf("fresh review: overdue %v pending %d", st.Overdue, st.Pending)
	}
	// An interval later it is overdue (and the next week's review is due).
	c.set(rv.CreatedAt.Add(7*24*time.Hour + time.Minute))
	if st, _ = svc.Status(ctx, 10); !st.Overdue {
		t.Fatal("a review older than the interval is not overdue")
	}
	if _, err := svc.Record(ctx, rv.ID, "  ", "user:laso1@pd.example", "local"); !errors.Is(err, input.ErrInvalid) {
		t.Fatalf("no note: %v", err)
	}
	got, err := svc.Record(ctx, rv.ID, "followed up the wipe and the lockout", "user:laso1@pd.example", "local")
	if err != nil || got.ReviewedAt == nil {
		t.Fatal(got, err)
	}
	if st, _ = svc.Status(ctx, 10); st.Overdue {
		t.Fatal("still overdue after the review was recorded")
	}
	if _, err := svc.Record(ctx, rv.ID, "again", "user:laso2@pd.example", "local"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second record: %v", err)
	}
	// The next period starts where this one ended.
	rv2, err := svc.Produce(ctx)
	if err != nil || rv2 == nil || !rv2.PeriodStart.Equal(rv.PeriodEnd) {
		t.Fatalf("next review: %+v %v", rv2, err)
	}
}

func TestShorterIntervalUnderThreat(t *testing.T) {
	ctx := context.Background()
	st, log, c, _, _ := setup(t)
	svc := New(st, log, WithClock(c.now), WithInterval(24*time.Hour))
	start := c.now()
	week(t, log, c, start)           // 17 entries, 3 h apart: 51 h
	c.set(start.Add(28 * time.Hour)) // the first entry is at +3 h
	rv, err := svc.Produce(ctx)
	if err != nil || rv == nil {
		t.Fatalf("daily review: %v %v", rv, err)
	}
	if rv.PeriodEnd.Sub(rv.PeriodStart) < 21*time.Hour || rv.PeriodEnd.Sub(rv.PeriodStart) > 25*time.Hour {
		t.Fatalf("period %v to %v", rv.PeriodStart, rv.PeriodEnd)
	}
}

// FuzzRecord: whatever the note and id, Record refuses or records, never
// panics, and never stores text that breaks the input rules.
func FuzzRecord(f *testing.F) {
	f.Add("id", "looked at it")
	f.Add("", "")
	f.Add("x\x00", "a\xffb")
	f.Fuzz(func(t *testing.T, id, note string) {
		st := &fakeStore{}
		svc := New(st, nopAudit{})
		rv, err := svc.Record(context.Background(), id, note, "user:l@pd.example", "local")
		if err == nil && (!utf8.ValidString(rv.Note) || rv.Note == "" || len(rv.Note) > MaxNote) {
			t.Fatalf("recorded %q", rv.Note)
		}
	})
}

type nopAudit struct{}

func (nopAudit) Record(context.Context, audit.Entry) error { return nil }

type fakeStore struct{ Store }

func (fakeStore) GetAuditReview(_ context.Context, id string) (*store.AuditReview, error) {
	return &store.AuditReview{ID: id}, nil
}

func (fakeStore) MarkAuditReviewed(context.Context, string, string, string, time.Time) (bool, error) {
	return true, nil
}
