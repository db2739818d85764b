package incidents

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// lostModes is lost mode as applemdm keeps it, without the device: each
// step goes on the timeline, and enable sets the enrollment's incident.
type lostModes struct {
	st    *store.Store
	mu    sync.Mutex
	calls []string
}

func (l *lostModes) do(ctx context.Context, step, deviceID, incidentID, actor string) error {
	l.mu.Lock()
	l.calls = append(l.calls, step+":"+deviceID+":"+actor)
	l.mu.Unlock()
	action := "lost_mode_" + step
	if step == "enable" {
		action = ActLostMode
		if err := l.st.UpdateAppleEnrollment(ctx, deviceID, map[string]any{"lost_mode_incident": incidentID}, t0); err != nil {
			return err
		}
	}
	return l.st.AppendIncidentEvents(ctx, incidentID, store.IncidentEvent{At: t0, Actor: actor, Action: action})
}

func (l *lostModes) Enable(ctx context.Context, d, i, actor, _ string) error {
	return l.do(ctx, "enable", d, i, actor)
}
func (l *lostModes) Locate(ctx context.Context, d, i, actor, _ string) error {
	return l.do(ctx, "locate", d, i, actor)
}
func (l *lostModes) PlaySound(ctx context.Context, d, i, actor, _ string) error {
	return l.do(ctx, "sound", d, i, actor)
}
func (l *lostModes) Disable(ctx context.Context, d, i, actor, _ string) error {
	return l.do(ctx, "disable", d, i, actor)
}

func (l *lostModes) got() string { l.mu.Lock(); defer l.mu.Unlock(); return strings.Join(l.calls, ",") }

// lostModeEnv has an agent's laptop (agent), a supervised iPhone
// (iphone), an unsupervised one (byod) and a supervised Mac (mac).
func lostModeEnv(t *testing.T) (*Service, *store.Store, *lostModes, *clock) {
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	for id, platform := range map[string]string{"agent": "linux", "iphone": "ios", "byod": "ios", "mac": "macos"} {
		st.DB().Create(&store.Device{ID: id, Platform: platform, Status: "active", EnrolledAt: t0})
	}
	for _, id := range []string{"iphone", "byod", "mac"} {
		if err := st.SaveAppleEnrollment(ctx, id, "udid-"+id, t0); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"iphone", "mac"} {
		if err := st.UpdateAppleEnrollment(ctx, id, map[string]any{"supervised": true}, t0); err != nil {
			t.Fatal(err)
		}
	}
	lm := &lostModes{st: st}
	clk := &clock{t: t0.Add(time.Minute)}
	return New(st, &auditLog{}, WithClock(clk.now), WithLostMode(lm, st)), st, lm, clk
}

func lostModeEvents(t *testing.T, st *store.Store, id string) []string {
	t.Helper()
	tl, err := st.IncidentTimeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range tl {
		if strings.HasPrefix(e.Action, ActLostMode) {
			out = append(out, e.Actor+" "+e.Action+" "+e.Detail)
		}
	}
	return out
}

// TestPlaybookLostMode: an ongoing loss of a supervised Apple device
// enables lost mode once, escalation included; any other device gets
// one event saying why not; a known-locked or ended loss gets neither.
func TestPlaybookLostMode(t *testing.T) {
	s, st, lm, clk := lostModeEnv(t)
	ctx := context.Background()
	open := func(device, lock string, ended *time.Time) *store.Incident {
		inc, err := s.Open(ctx, Report{DeviceID: device, Kind: KindLossOfControl, LockState: lock, StartedAt: t0, EndedAt: ended, Actor: "user:u"})
		if err != nil {
			t.Fatal(err)
		}
		return inc
	}
	iphone := open("iphone", LockUnknown, nil)
	if lm.got() != "enable:iphone:playbook" {
		t.Fatalf("lost-mode calls %q, want one enable by the playbook", lm.got())
	}
	byod, agent, mac := open("byod", LockUnknown, nil), open("agent", LockUnlocked, nil), open("mac", LockUnknown, nil)
	if lm.got() != "enable:iphone:playbook" {
		t.Fatalf("lost-mode calls %q: only the supervised iPhone has lost mode", lm.got())
	}
	for id, want := range map[string]string{byod.ID: "not supervised", agent.ID: "not managed through Apple MDM", mac.ID: "a Mac has no lost mode"} {
		ev := lostModeEvents(t, st, id)
		if len(ev) != 1 || !strings.Contains(ev[0], "playbook lost_mode lost mode does not apply") || !strings.Contains(ev[0], want) {
			t.Errorf("timeline %q, want one lost_mode event saying %q", ev, want)
		}
	}
	locked := open("iphone", LockLocked, nil)
	end := t0.Add(time.Minute)
	ended := open("iphone", LockUnknown, &end)
	for _, inc := range []*store.Incident{locked, ended} {
		if ev := lostModeEvents(t, st, inc.ID); len(ev) != 0 {
			t.Errorf("%s (ended %v): lost mode %q, want none", inc.Category, inc.EndedAt != nil, ev)
		}
	}
	// At the line every ongoing one escalates: the locked one now gets
	// lost mode, the others keep their single step.
	clk.set(t0.Add(15 * time.Minute))
	s.Escalate(ctx)
	if lm.got() != "enable:iphone:playbook,enable:iphone:playbook" {
		t.Fatalf("after escalation %q, want the locked loss's enable added", lm.got())
	}
	for _, id := range []string{iphone.ID, byod.ID, agent.ID} {
		if ev := lostModeEvents(t, st, id); len(ev) != 1 {
			t.Errorf("after escalation %q, want the one lost_mode event", ev)
		}
	}
}

// TestLostModeAction: the LASO's steps need a supervised device, lost
// mode on for the incident (but enable) and an open incident (but
// disable); resolving the incident that holds lost mode disables it.
func TestLostModeAction(t *testing.T) {
	s, _, lm, clk := lostModeEnv(t)
	ctx := context.Background()
	inc, err := s.Open(ctx, Report{DeviceID: "iphone", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, Actor: "user:u"})
	if err != nil {
		t.Fatal(err)
	}
	byod, _ := s.Open(ctx, Report{DeviceID: "byod", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, Actor: "user:u"})
	for _, c := range []struct {
		id, action string
		want       error
	}{
		{inc.ID, "wipe", ErrInvalid},
		{inc.ID, LostModeLocate, ErrNoLostMode}, // not enabled yet
		{byod.ID, LostModeEnable, ErrNoLostMode},
		{"no-such-incident", LostModeEnable, store.ErrNotFound},
	} {
		if _, err := s.LostModeAction(ctx, c.id, c.action, "laso", "127.0.0.1"); !errors.Is(err, c.want) {
			t.Errorf("%s on %s: %v, want %v", c.action, c.id, err, c.want)
		}
	}
	if lm.got() != "" {
		t.Fatalf("refused steps reached lost mode: %q", lm.got())
	}
	for _, a := range []string{LostModeEnable, LostModeLocate, LostModeSound} {
		if _, err := s.LostModeAction(ctx, inc.ID, a, "laso", "127.0.0.1"); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if lm.got() != "enable:iphone:laso,locate:iphone:laso,sound:iphone:laso" {
		t.Fatalf("calls %q", lm.got())
	}
	end := t0.Add(2 * time.Minute)
	clk.set(end)
	if _, err := s.Update(ctx, inc.ID, Update{EndedAt: &end, Status: "resolved", Actor: "laso"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(lm.got(), ",disable:iphone:laso") {
		t.Fatalf("resolution did not disable lost mode: %q", lm.got())
	}
	if _, err := s.LostModeAction(ctx, inc.ID, LostModeLocate, "laso", "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("locate on a resolved incident: %v, want ErrInvalid", err)
	}
	if _, err := s.LostModeAction(ctx, inc.ID, LostModeDisable, "laso", "x"); err != nil {
		t.Fatalf("disable on a resolved incident (the device has not acknowledged yet): %v", err)
	}
}

func TestLostModeInPlaybooks(t *testing.T) {
	if a := DefaultPlaybook.Actions("unknown_minimal", Minimal, false); !a[ActLostMode] || !a[ActLock] {
		t.Errorf("default unknown_minimal %v, want lock and lost mode", a)
	}
	if a := DefaultPlaybook.Actions("locked_minimal", Minimal, false); a[ActLostMode] {
		t.Errorf("default locked_minimal %v: no lock, no lost mode", a)
	}
	if err := (Playbook{"unlocked": {ActLostMode}}).Check(); err != nil {
		t.Errorf("a playbook naming lost_mode: %v", err)
	}
}

func TestDeviceLocationRoundTrip(t *testing.T) {
	acc := 65.5
	dt := time.Date(2026, 11, 23, 8, 3, 0, 0, time.UTC)
	want := DeviceLocation{Latitude: 38.8977, Longitude: -77.0365, Accuracy: &acc, DeviceTime: &dt, ReceivedAt: dt.Add(1500 * time.Millisecond)}
	tl := []store.IncidentEvent{
		{Action: ActionLocated, Detail: DeviceLocation{Latitude: 1, Longitude: 2, ReceivedAt: t0}.Detail()},
		{Action: ActionLocated, Detail: want.Detail() + " (DeviceLocation.i1.ab12)"},
		{Action: "lost_mode_error", Detail: "latitude 9, longitude 9"},
	}
	got := LastDeviceLocation(tl)
	if got == nil || got.Latitude != want.Latitude || got.Longitude != want.Longitude || *got.Accuracy != acc ||
		!got.DeviceTime.Equal(dt) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Fatalf("read back %+v from %q", got, tl[1].Detail)
	}
	unknown := LastDeviceLocation(tl[:1])
	if unknown == nil || unknown.Accuracy != nil || unknown.DeviceTime != nil {
		t.Fatalf("unknown accuracy and time read back as %+v", unknown)
	}
	if LastDeviceLocation(tl[2:]) != nil {
		t.Fatal("a location from an event that is no location")
	}
}
