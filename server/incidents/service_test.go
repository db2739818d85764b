package incidents

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

type auditLog struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (a *auditLog) RecordTx(ctx context.Context, _ audit.Appender, e audit.Entry) error {
	return a.Record(ctx, e)
}

func (a *auditLog) Record(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
	return nil
}

func (a *auditLog) count(action string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, e := range a.entries {
		if e.Action == action {
			n++
		}
	}
	return n
}

type notifications struct {
	mu  sync.Mutex
	why []string
}

func (n *notifications) Notify(_ context.Context, inc *store.Incident, why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.why = append(n.why, why)
}

var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestOngoingIncidentEscalatesAtTheLine(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Name: "cruiser-12", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(5 * time.Minute)}
	log, note := &auditLog{}, &notifications{}
	s := New(st, log, WithClock(clk.now), WithNotifier(note))
	ctx := context.Background()
	inc, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0,
		Location: "Main St diner", Description: "left on the counter", Actor: "apikey:officer", Source: "10.0.0.9"})
	if err != nil {
		t.Fatal(err)
	}
	if inc.DurationClass != Minimal || inc.EscalateAt == nil {
		t.Fatalf("new ongoing incident %+v", inc)
	}
	clk.set(t0.Add(14*time.Minute + 59*time.Second))
	s.Escalate(ctx)
	if got, _ := st.GetIncident(ctx, inc.ID); got.DurationClass != Minimal {
		t.Fatalf("escalated at 14:59: %+v", got)
	}
	clk.set(t0.Add(15 * time.Minute))
	s.Escalate(ctx)
	got, _ := st.GetIncident(ctx, inc.ID)
	if got.DurationClass != Extended || got.Category != "locked_extended" || got.EscalateAt != nil {
		t.Fatalf("at 15:00: %+v", got)
	}
	tl, _ := st.IncidentTimeline(ctx, inc.ID)
	if len(tl) < 2 || tl[1].Action != "escalated" {
		t.Fatalf("timeline %+v", tl)
	}
	if log.count(ActionEscalated) != 1 || len(note.why) != 2 || note.why[1] != "escalated to extended" {
		t.Fatalf("audit %d, notifications %v", log.count(ActionEscalated), note.why)
	}
	// It fires once.
	clk.set(t0.Add(20 * time.Minute))
	s.Escalate(ctx)
	if log.count(ActionEscalated) != 1 {
		t.Fatal("escalated twice")
	}
}

func TestEscalationSurvivesARestart(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(time.Minute)}
	ctx := context.Background()
	inc, err := New(st, &auditLog{}, WithClock(clk.now)).Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl,
		LockState: LockUnknown, StartedAt: t0, Actor: "apikey:officer"})
	if err != nil {
		t.Fatal(err)
	}
	// The server stops 14 minutes in and comes back at 16.
	st.Close()
	clk.set(t0.Add(16 * time.Minute))
	st = openStore(t, dir)
	defer st.Close()
	log := &auditLog{}
	if err := New(st, log, WithClock(clk.now)).Escalate(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := st.GetIncident(ctx, inc.ID)
	if got.DurationClass != Extended || got.Category != "unknown_extended" || log.count(ActionEscalated) != 1 {
		t.Fatalf("after restart: %+v", got)
	}
	tl, _ := st.IncidentTimeline(ctx, inc.ID)
	for _, e := range tl {
		if e.Action == "escalated" && !strings.Contains(e.Detail, "late") {
			t.Errorf("the late escalation does not say so: %q", e.Detail)
		}
	}
}

func TestTelemetryContradictsReporter(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0})
	st.DB().Create(&store.LockEvent{DeviceID: "d1", At: t0.Add(-time.Hour), State: LockLocked, Source: "logind"})
	st.DB().Create(&store.LockEvent{DeviceID: "d1", At: t0.Add(2 * time.Minute), State: LockUnlocked, Source: "logind"})
	end := t0.Add(5 * time.Minute)
	clk := &clock{t: t0.Add(10 * time.Minute)}
	inc, err := New(st, &auditLog{}, WithClock(clk.now)).Open(context.Background(), Report{DeviceID: "d1",
		Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, EndedAt: &end, Actor: "apikey:officer"})
	if err != nil {
		t.Fatal(err)
	}
	if inc.LockObserved != LockUnlocked || inc.LockState != LockUnlocked || inc.Contradiction == "" || inc.Category != "unlocked" {
		t.Fatalf("incident %+v", inc)
	}
}

func TestServerDetectsSilentUnlockedDevices(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seen := t0
	for id, lock := range map[string]string{"unlocked-laptop": LockUnlocked, "locked-laptop": LockLocked} {
		st.DB().Create(&store.Device{ID: id, Status: "active", EnrolledAt: t0.Add(-time.Hour), LastSeen: &seen})
		st.DB().Create(&store.LockEvent{DeviceID: id, At: t0.Add(-time.Minute), State: lock, Source: "logind"})
	}
	clk := &clock{t: t0.Add(14*time.Minute + 59*time.Second)}
	log := &auditLog{}
	s := New(st, log, WithClock(clk.now))
	ctx := context.Background()
	s.DetectSilentUnlocked(ctx)
	if n, _ := st.ListIncidents(ctx); len(n) != 0 {
		t.Fatalf("incident before 15 minutes of silence: %+v", n)
	}
	clk.set(t0.Add(15 * time.Minute))
	s.DetectSilentUnlocked(ctx)
	s.DetectSilentUnlocked(ctx) // and only one
	is, _ := st.ListIncidents(ctx)
	if len(is) != 1 || is[0].DeviceID != "unlocked-laptop" || is[0].Detection != "telemetry" || is[0].DurationClass != Extended {
		t.Fatalf("server-detected incidents %+v", is)
	}
	if log.count(ActionDetected) != 1 {
		t.Fatal("no audit entry for the detection")
	}
}

// A lock event dated in the future (written before the server checked
// device clocks) does not hide an unlocked device from detection: the
// state that counts is the one in force now.
func TestDetectionIgnoresFutureLockEntries(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	seen := t0
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0.Add(-time.Hour), LastSeen: &seen})
	st.DB().Create(&store.LockEvent{DeviceID: "d1", At: t0.Add(-time.Minute), State: LockUnlocked, Source: "logind"})
	st.DB().Create(&store.LockEvent{DeviceID: "d1", At: t0.AddDate(1, 0, 0), State: LockLocked, Source: "logind"})
	clk := &clock{t: t0.Add(15 * time.Minute)}
	ctx := context.Background()
	New(st, &auditLog{}, WithClock(clk.now)).DetectSilentUnlocked(ctx)
	if is, _ := st.ListIncidents(ctx); len(is) != 1 || is[0].LockObserved != LockUnlocked {
		t.Fatalf("server-detected incidents %+v", is)
	}
}

func TestStatusMovesForwardOnly(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(time.Minute)}
	s := New(st, &auditLog{}, WithClock(clk.now))
	ctx := context.Background()
	inc, _ := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, Actor: "a"})
	if _, err := s.Update(ctx, inc.ID, Update{Status: "closed", Actor: "laso"}); err == nil {
		t.Fatal("closed an incident that has not ended")
	}
	end := t0.Add(90 * time.Second)
	if _, err := s.Update(ctx, inc.ID, Update{Status: "triaged", EndedAt: &end, Actor: "laso"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, inc.ID, Update{Status: "reported", Actor: "laso"}); err != ErrTransition {
		t.Fatalf("moved backwards: %v", err)
	}
	got, err := s.Update(ctx, inc.ID, Update{Status: "closed", Disposition: "recovered, no CJI exposed", Actor: "laso"})
	if err != nil || got.Status != "closed" || got.EscalateAt != nil || got.DurationClass != Minimal {
		t.Fatalf("closed: %+v %v", got, err)
	}
}

func TestResponseFormOfAClosedIncident(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	dev := store.Device{ID: "d1", Name: "cruiser-12", Platform: "linux/amd64", OSName: "Debian", OSVersion: "12", Owner: "officer@pd.example", Status: "active", EnrolledAt: t0}
	st.DB().Create(&dev)
	clk := &clock{t: t0.Add(time.Minute)}
	s := New(st, &auditLog{}, WithClock(clk.now))
	ctx := context.Background()
	lat, lon := 40.7128, -74.0060
	inc, _ := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockUnknown, StartedAt: t0,
		Location: "Main St diner", Latitude: &lat, Longitude: &lon, Description: "laptop left on the counter", Actor: "apikey:officer"})
	end := t0.Add(20 * time.Minute)
	clk.set(t0.Add(30 * time.Minute))
	s.Update(ctx, inc.ID, Update{Status: "triaged", EndedAt: &end, Actor: "apikey:laso-1"})
	s.Update(ctx, inc.ID, Update{Status: "closed", Disposition: "recovered by the officer; no CJI exposed", Actor: "apikey:laso-1"})
	inc, _ = st.GetIncident(ctx, inc.ID)
	tl, _ := st.IncidentTimeline(ctx, inc.ID)
	f := BuildForm(FormData{Incident: inc, Device: &dev, Timeline: tl, Now: clk.now()})
	for name, v := range map[string]string{"date of report": f.DateOfReport, "date of incident": f.DateOfIncident,
		"location": f.Location, "method of detection": f.MethodOfDetection, "nature": f.Nature,
		"description": f.Description, "resolution": f.Resolution, "ended": f.IncidentEnded} {
		if v == "" {
			t.Errorf("%s is empty", name)
		}
	}
	if len(f.PointsOfContact) < 2 || len(f.SystemsAffected) != 1 || !strings.Contains(f.SystemsAffected[0], "cruiser-12") || len(f.ActionsTaken) < 3 {
		t.Errorf("form %+v", f)
	}
	if !strings.Contains(f.Nature, "extended") || !strings.Contains(f.Location, "40.71280") {
		t.Errorf("nature %q location %q", f.Nature, f.Location)
	}
	var b strings.Builder
	if err := f.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Points of contact", "Systems affected", "Method of detection", "Actions taken", "Resolution", "no CJI exposed", "apikey:laso-1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML form lacks %q", want)
		}
	}
}

type locks struct {
	mu      sync.Mutex
	devices []string
}

func (l *locks) Lock(_ context.Context, deviceID, reason string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.devices = append(l.devices, deviceID)
	return "cmd-" + deviceID, nil
}

func (l *locks) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.devices) }

// TestPlaybook: lock at once when the lock state is not known good, lock
// and recommend a wipe (never wipe) once extended, and only once each.
func TestPlaybook(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	for _, id := range []string{"d1", "d2", "d3"} {
		st.DB().Create(&store.Device{ID: id, Status: "active", EnrolledAt: t0})
	}
	clk := &clock{t: t0.Add(time.Minute)}
	lk := &locks{}
	s := New(st, &auditLog{}, WithClock(clk.now), WithLocker(lk))
	ctx := context.Background()

	unknown, _ := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockUnknown, StartedAt: t0, Actor: "a"})
	if unknown.LockCommand != "cmd-d1" || unknown.WipeRecommended {
		t.Fatalf("unknown, minimal: %+v", unknown)
	}
	locked, _ := s.Open(ctx, Report{DeviceID: "d2", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, Actor: "a"})
	if locked.LockCommand != "" || locked.WipeRecommended || lk.count() != 1 {
		t.Fatalf("locked, minimal: %+v", locked)
	}
	stolen, _ := s.Open(ctx, Report{DeviceID: "d3", Kind: KindTotalLoss, LockState: LockLocked, StartedAt: t0, Actor: "a"})
	if stolen.LockCommand == "" || !stolen.WipeRecommended {
		t.Fatalf("total loss: %+v", stolen)
	}
	if dev, _ := st.GetDevice(ctx, "d1"); dev.QuarantinedAt != nil {
		t.Fatalf("unknown, minimal quarantined: %+v", dev)
	}
	// At 15:00 the locked loss escalates: now it is locked and a wipe is
	// recommended; the unknown one keeps its single lock.
	clk.set(t0.Add(15 * time.Minute))
	s.Escalate(ctx)
	got, _ := st.GetIncident(ctx, locked.ID)
	if got.LockCommand == "" || !got.WipeRecommended {
		t.Fatalf("locked, escalated: %+v", got)
	}
	if lk.count() != 3 {
		t.Fatalf("%d locks, want 3 (one per device)", lk.count())
	}
	tl, _ := st.IncidentTimeline(ctx, locked.ID)
	var actions []string
	for _, e := range tl {
		actions = append(actions, e.Action)
	}
	if !strings.Contains(strings.Join(actions, ","), "escalated,lock,quarantine,wipe_recommended") {
		t.Fatalf("timeline %v", actions)
	}
	// Quarantine holds until the LASO resolves the incident, and only
	// the incident that put it on takes it off.
	dev, _ := st.GetDevice(ctx, "d2")
	if dev.QuarantinedAt == nil || dev.QuarantineIncident != locked.ID {
		t.Fatalf("escalated device not quarantined: %+v", dev)
	}
	end := t0.Add(20 * time.Minute)
	clk.set(end)
	if _, err := s.Update(ctx, locked.ID, Update{EndedAt: &end, Status: "contained", Actor: "laso"}); err != nil {
		t.Fatal(err)
	}
	if dev, _ := st.GetDevice(ctx, "d2"); dev.QuarantinedAt == nil {
		t.Fatal("contained lifted the quarantine; only resolved does")
	}
	if _, err := s.Update(ctx, locked.ID, Update{Status: "resolved", Actor: "laso"}); err != nil {
		t.Fatal(err)
	}
	if dev, _ := st.GetDevice(ctx, "d2"); dev.QuarantinedAt != nil || dev.QuarantineIncident != "" {
		t.Fatalf("resolved but still quarantined: %+v", dev)
	}
}

func TestPlaybookConfigured(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/playbook.json"
	os.WriteFile(path, []byte(`{"locked_minimal": ["lock"], "extended": ["lock"]}`), 0o600)
	p, err := LoadPlaybook(path)
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Actions("locked_minimal", Minimal, false); !a[ActLock] {
		t.Errorf("configured rule not applied: %v", a)
	}
	if a := p.Actions("unknown_extended", Extended, false); a[ActQuarantine] || a[ActRecommendWipe] || !a[ActLock] {
		t.Errorf("extended rule replaced, yet %v", a)
	}
	if a := p.Actions("compromise", Minimal, false); !a[ActQuarantine] {
		t.Errorf("rules left out must keep the default: %v", a)
	}
	if a := p.Actions("locked_minimal", Minimal, true); !a[ActRecommendWipe] {
		t.Errorf("outside the US: %v", a)
	}
	for _, bad := range []string{`{"lost": ["lock"]}`, `{"unlocked": ["wipe"]}`, `[1]`} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := LoadPlaybook(path); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestReportRefIdempotent: an agent that resends a report (its ack was
// lost) gets the same incident, and nobody is notified twice.
func TestReportRefIdempotent(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(time.Minute)}
	n := &notifications{}
	s := New(st, &auditLog{}, WithClock(clk.now), WithNotifier(n))
	ctx := context.Background()
	r := Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, Actor: "device:d1", Reporter: "alice", Ref: "d1/frame-1"}
	a, err := s.Open(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(ctx, r)
	if err != nil || b.ID != a.ID {
		t.Fatalf("second copy: %v %v", b, err)
	}
	if a.Reporter != "alice" || len(n.why) != 1 {
		t.Fatalf("reporter %q, %d notifications", a.Reporter, len(n.why))
	}
	r.Ref = "d1/frame-2"
	if c, _ := s.Open(ctx, r); c.ID == a.ID {
		t.Fatal("a new report reused the old incident")
	}
	api, _ := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, StartedAt: t0, Actor: "user:bob"})
	api2, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, StartedAt: t0, Actor: "user:bob"})
	if err != nil || api.ID == api2.ID {
		t.Fatalf("reports without a ref must not collide: %v", err)
	}
}
