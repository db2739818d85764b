package audit

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// flakyAlarm refuses until up is set, and counts what it was told.
type flakyAlarm struct {
	mu     sync.Mutex
	up     bool
	calls  int
	raised []Outage
}

func (a *flakyAlarm) AuditFailing(_ context.Context, f Outage) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if !a.up {
		return errors.New("SMTP is down too")
	}
	a.raised = append(a.raised, f)
	return nil
}

func (a *flakyAlarm) told() (int, []Outage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls, append([]Outage(nil), a.raised...)
}

// TestFailedAppendsAlarmAndSummarise: appends refused by the database
// (a trigger) return ErrUnavailable and are counted; the alarm is raised
// at the first, retried by Sweep until it goes, and raised once per run;
// once appends work, Sweep writes exactly one audit.failed summarising
// the run, and the chain still verifies.
func TestFailedAppendsAlarmAndSummarise(t *testing.T) {
	ctx := context.Background()
	alarm := &flakyAlarm{}
	l, st := newLog(t)
	l.SetAlarm(alarm)
	record(t, l, 2)
	if err := st.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"command.requested", "command.requested", "device.group_changed"} {
		err := l.Record(ctx, Entry{Actor: "local:t", Source: "local", Action: a, Target: "x", Outcome: Success})
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("append to a read-only table: %v", err)
		}
	}
	if n := l.Failures(); n != 3 {
		t.Fatalf("Failures() = %d, want 3", n)
	}
	waitFor(t, func() bool { n, _ := alarm.told(); return n >= 1 }) // the immediate attempt
	l.Sweep(ctx)                                                    // SMTP still down, table still read-only
	alarm.mu.Lock()
	alarm.up = true
	alarm.mu.Unlock()
	l.Sweep(ctx)
	if _, raised := alarm.told(); len(raised) != 1 || raised[0].Count < 1 {
		t.Fatalf("alarm raised %+v, want once", raised)
	}
	if es, _ := st.ListAudit(ctx, store.AuditQuery{Action: Failed}); len(es) != 0 {
		t.Fatal("audit.failed written while the table is read-only")
	}
	st.DB().Exec("DROP TRIGGER ro")
	l.Sweep(ctx)
	l.Sweep(ctx)
	es, err := st.ListAudit(ctx, store.AuditQuery{Action: Failed})
	if err != nil || len(es) != 1 {
		t.Fatalf("audit.failed entries %d (%v), want 1", len(es), err)
	}
	var d map[string]string
	json.Unmarshal([]byte(es[0].Details), &d)
	if d["failures"] != "3" || d["actions"] != "command.requested×2, device.group_changed×1" || d["first"] == "" || d["last"] == "" {
		t.Fatalf("audit.failed details %v", d)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000000Z", d["first"]); err != nil {
		t.Fatalf("first: %v", err)
	}
	if res, err := l.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("verify: %+v %v", res, err)
	}
	// A new run alarms again.
	st.DB().Exec("CREATE TRIGGER ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END")
	l.Record(ctx, Entry{Actor: "local:t", Source: "local", Action: "user.created", Target: "x", Outcome: Success})
	waitFor(t, func() bool { _, r := alarm.told(); return len(r) == 2 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("condition not met within 2 s")
}
