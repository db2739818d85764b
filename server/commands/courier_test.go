package commands

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// fakeCourier carries to "ios" devices and records what it was handed;
// its frame is "<kind>:<pin>", its secret the part after the colon.
type fakeCourier struct {
	delivered []store.Command
	fail      error
}

func (f *fakeCourier) Carries(platform string) bool { return platform == "ios" }

func (f *fakeCourier) Render(c protocol.Command, platform string) ([]byte, error) {
	return []byte(c.Kind + ":123456"), nil
}

func (f *fakeCourier) Deliver(_ context.Context, c *store.Command) error {
	if f.fail != nil {
		return f.fail
	}
	f.delivered = append(f.delivered, *c)
	return nil
}

func (f *fakeCourier) Secret(frame []byte) string {
	_, s, _ := strings.Cut(string(frame), ":")
	return s
}

// pushed records frames sent over the hub, as to a connected agent.
type pushed struct{ frames map[string]int }

func (p *pushed) Send(deviceID string, _ []byte) bool { p.frames[deviceID]++; return true }

type revocations struct{ ids []string }

func (r *revocations) Revoke(_ context.Context, id, _, _, _ string) error {
	r.ids = append(r.ids, id)
	return nil
}

// courierService is the queue on SQLite with an iPhone ("phone-3", for
// the courier) and an agent ("car-12", for the hub).
func courierService(t *testing.T) (*Service, *store.Store, *fakeCourier, *pushed, *revocations, *auditLog) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	st.DB().Create(&store.Device{ID: "p1", Name: "phone-3", Platform: "ios", Status: "active", EnrolledAt: now})
	st.DB().Create(&store.Device{ID: "d1", Name: "car-12", Platform: "linux", Status: "active", EnrolledAt: now})
	_, key, _ := ed25519.GenerateKey(nil)
	c, hub, rev, log := &fakeCourier{}, &pushed{frames: map[string]int{}}, &revocations{}, &auditLog{}
	s := New(st, log, key, hub, rev, WithWipeProtection(1, time.Hour))
	s.Carry(c)
	return s, st, c, hub, rev, log
}

func (a *auditLog) has(action, outcome string) bool {
	for _, e := range a.entries {
		if e.Action == action && e.Outcome == outcome {
			return true
		}
	}
	return false
}

// A LASO's wipe of the courier's device is rendered and stored, handed to
// the courier rather than the hub, and delivered with its entry; the
// device's acknowledgement completes it and revokes the device once;
// the agent next to it still gets its lock over the hub.
func TestCourierCarriesItsDevicesCommands(t *testing.T) {
	ctx := context.Background()
	s, st, c, hub, rev, log := courierService(t)
	w, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandWipe, Confirm: "phone-3",
		Actor: "user:laso@pd.example", Role: "laso", Source: "test"})
	if err != nil || w.Status != store.CommandDelivered || string(w.Frame) != "wipe:123456" {
		t.Fatalf("wipe: %+v %v, want delivered with the courier's frame", w, err)
	}
	if len(c.delivered) != 1 || c.delivered[0].ID != w.ID || hub.frames["p1"] != 0 {
		t.Fatalf("courier got %+v, hub %v", c.delivered, hub.frames)
	}
	if !log.has(ActionDelivered, audit.Success) {
		t.Fatalf("no %s entry: %+v", ActionDelivered, log.entries)
	}
	if got := s.Secret(w); got != "123456" {
		t.Fatalf("secret %q", got)
	}
	for i := 0; i < 2; i++ { // the device may send its answer twice
		after, err := s.Result(ctx, "p1", "10.0.0.9", protocol.CommandResult{Ref: w.ID, Status: protocol.ResultDone})
		if err != nil {
			t.Fatal(err)
		}
		if (after != nil) != (i == 0) {
			t.Fatalf("answer %d: after %v", i+1, after != nil)
		}
		if after != nil {
			after()
		}
	}
	if got, _ := st.GetCommand(ctx, w.ID); got.Status != store.CommandDone || len(rev.ids) != 1 || rev.ids[0] != "p1" {
		t.Fatalf("after the answers: %s, revoked %v", got.Status, rev.ids)
	}

	l, err := s.Issue(ctx, Request{DeviceID: "d1", Kind: protocol.CommandLock, Actor: "user:it@pd.example", Role: "it-admin", Source: "test"})
	if err != nil || l.Status != store.CommandDelivered || hub.frames["d1"] != 1 || len(c.delivered) != 1 {
		t.Fatalf("agent lock: %+v %v; hub %v, courier %d", l, err, hub.frames, len(c.delivered))
	}
	if _, err := protocol.Decode(l.Frame); err != nil {
		t.Fatalf("the agent's frame is not a protocol frame: %v", err)
	}
}

// The rules are the queue's, whoever carries: an it-admin may not wipe,
// a wipe must name its device, a wipe storm is held for a second LASO
// and the approved wipe goes to the courier; bluetooth_block, which
// Apple has no command for, is refused with its entry.
func TestCourierDevicesKeepTheQueuesRules(t *testing.T) {
	ctx := context.Background()
	s, st, c, _, _, log := courierService(t)
	if _, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandWipe, Confirm: "phone-3", Actor: "user:it@pd.example",
		Role: "it-admin", Source: "test"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("it-admin wipe: %v", err)
	}
	if _, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandWipe, Actor: "user:laso@pd.example",
		Role: "laso", Source: "test"}); !errors.Is(err, ErrConfirm) {
		t.Fatalf("wipe without confirm: %v", err)
	}
	log.entries = nil
	if _, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandBluetoothBlock, Address: "aa:bb:cc:dd:ee:ff",
		Actor: "compliance (x)", Role: "it-admin", Source: "local"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bluetooth_block to an iPhone: %v, want ErrInvalid", err)
	}
	if len(log.entries) != 1 || log.entries[0].Action != ActionRefused || !strings.Contains(log.entries[0].Details["reason"], "ios") {
		t.Fatalf("refusal entries %+v", log.entries)
	}
	if len(c.delivered) != 0 {
		t.Fatalf("refused commands reached the courier: %+v", c.delivered)
	}

	laso := Request{DeviceID: "p1", Kind: protocol.CommandWipe, Confirm: "p1", Actor: "user:laso@pd.example", Role: "laso", Source: "test"}
	if _, err := s.Issue(ctx, laso); err != nil {
		t.Fatal(err)
	}
	held, err := s.Issue(ctx, laso)
	if err != nil || held.Status != store.CommandHeld || len(c.delivered) != 1 {
		t.Fatalf("second wipe within the window: %+v %v; courier %d", held, err, len(c.delivered))
	}
	if _, err := s.Approve(ctx, held.ID, "user:laso2@pd.example", "laso", "test"); err != nil {
		t.Fatal(err)
	}
	if len(c.delivered) != 2 || c.delivered[1].ID != held.ID {
		t.Fatalf("approved wipe did not reach the courier: %+v", c.delivered)
	}
	if got, _ := st.GetCommand(ctx, held.ID); got.Status != store.CommandDelivered {
		t.Fatalf("approved wipe %s", got.Status)
	}
}

// A courier that cannot queue leaves the command queued, not delivered,
// so it expires at its not-after like an agent's that never connected.
func TestCourierFailureLeavesTheCommandQueued(t *testing.T) {
	ctx := context.Background()
	s, st, c, _, _, log := courierService(t)
	c.fail = errors.New("disk full")
	l, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandLock, Actor: "user:it@pd.example", Role: "it-admin", Source: "test"})
	if err != nil || l.Status != store.CommandQueued || log.has(ActionDelivered, audit.Success) {
		t.Fatalf("lock with a failing courier: %+v %v", l, err)
	}
	s.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	s.Expire(ctx)
	if got, _ := st.GetCommand(ctx, l.ID); got.Status != store.CommandExpired {
		t.Fatalf("after its not-after: %s", got.Status)
	}
}

// nanomdm cannot withdraw one queued command, so a courier's device may
// run a wipe after Cordon expired it: its done answer revokes the device
// all the same, with an entry, and a repeated answer changes nothing. A
// late lock's answer changes nothing either.
func TestAWipeDoneAfterItsExpiryStillRevokes(t *testing.T) {
	ctx := context.Background()
	s, st, _, _, rev, log := courierService(t)
	w, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandWipe, Confirm: "p1", Actor: "user:laso@pd.example", Role: "laso", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.Issue(ctx, Request{DeviceID: "p1", Kind: protocol.CommandLock, Actor: "user:laso@pd.example", Role: "laso", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	s.Expire(ctx)
	if after, err := s.Result(ctx, "p1", "10.0.0.9", protocol.CommandResult{Ref: l.ID, Status: protocol.ResultDone}); err != nil || after != nil {
		t.Fatalf("late lock answer: %v %v", after != nil, err)
	}
	log.entries = nil
	after, err := s.Result(ctx, "p1", "10.0.0.9", protocol.CommandResult{Ref: w.ID, Status: protocol.ResultDone})
	if err != nil || after == nil {
		t.Fatalf("late wipe answer: after %v, %v", after != nil, err)
	}
	after()
	st.DB().Model(&store.Device{}).Where("id = ?", "p1").Update("status", store.StatusRevoked) // what Revoke does
	if len(rev.ids) != 1 || len(log.entries) != 1 || log.entries[0].Details["after"] != store.CommandExpired {
		t.Fatalf("revoked %v, entries %+v", rev.ids, log.entries)
	}
	if after, err := s.Result(ctx, "p1", "10.0.0.9", protocol.CommandResult{Ref: w.ID, Status: protocol.ResultDone}); err != nil || after != nil {
		t.Fatalf("repeated late wipe answer: %v %v", after != nil, err)
	}
	if got, _ := st.GetCommand(ctx, w.ID); got.Status != store.CommandExpired {
		t.Fatalf("late wipe's command %s, want it to stay expired", got.Status)
	}
}
