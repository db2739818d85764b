package commands

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

type nobody struct{}

func (nobody) Send(string, []byte) bool { return false }

type noRevoke struct{}

func (noRevoke) Revoke(context.Context, string, string, string, string) error { return nil }

type auditLog struct{ entries []audit.Entry }

func (a *auditLog) Record(_ context.Context, e audit.Entry) error {
	a.entries = append(a.entries, e)
	return nil
}

func (a *auditLog) RecordTx(ctx context.Context, _ audit.Appender, e audit.Entry) error {
	return a.Record(ctx, e)
}

// newService is the command service on a real SQLite store holding one
// active device, d1 ("car-12"), with the real audit log.
func newService(t *testing.T) (*Service, *store.Store, *audit.Log) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.DB().Create(&store.Device{ID: "d1", Name: "car-12", Status: "active", EnrolledAt: time.Now().UTC()})
	_, key, _ := ed25519.GenerateKey(nil)
	log := audit.New(st, nil)
	return New(st, log, key, nobody{}, noRevoke{}), st, log
}

// TestCommandWithoutItsEntryIsNotQueued (AU-5): with the audit table
// refusing inserts (a trigger, a real fault in the database), a wipe is
// refused with audit.ErrUnavailable and no command row exists.
func TestCommandWithoutItsEntryIsNotQueued(t *testing.T) {
	ctx := context.Background()
	s, st, log := newService(t)
	var err error
	if err := st.DB().Exec("CREATE TRIGGER audit_ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	_, err = s.Issue(ctx, Request{DeviceID: "d1", Kind: "wipe", Confirm: "car-12", Actor: "user:laso@pd.example", Role: "laso", Source: "test"})
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("issue: %v, want audit.ErrUnavailable", err)
	}
	var n int64
	st.DB().Model(&store.Command{}).Count(&n)
	if n != 0 {
		t.Fatalf("%d commands stored without their audit entry", n)
	}
	if log.Failures() == 0 {
		t.Fatal("the failure was not counted")
	}
	st.DB().Exec("DROP TRIGGER audit_ro")
	log.Sweep(ctx)
	es, err := st.ListAudit(ctx, store.AuditQuery{Action: audit.Failed})
	if err != nil || len(es) != 1 {
		t.Fatalf("audit.failed entries: %v %v", es, err)
	}
	if res, err := log.Verify(ctx); err != nil || !res.OK {
		t.Fatalf("verify after the fault: %+v %v", res, err)
	}
}

// TestUnansweredCommandsExpire: a device that never comes back leaves its
// command expired, with an audit entry, not queued forever.
func TestUnansweredCommandsExpire(t *testing.T) {
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: now})
	_, key, _ := ed25519.GenerateKey(nil)
	log := &auditLog{}
	s := New(st, log, key, nobody{}, noRevoke{}, WithTTL(time.Hour))
	s.now = func() time.Time { return now }
	c, err := s.Issue(context.Background(), Request{DeviceID: "d1", Kind: "lock", Actor: "apikey:x", Role: "it-admin", Source: "test"})
	if err != nil || c.Status != store.CommandQueued {
		t.Fatalf("issue: %+v %v", c, err)
	}
	s.Expire(context.Background())
	if got, _ := st.GetCommand(context.Background(), c.ID); got.Status != store.CommandQueued {
		t.Fatalf("expired before its not-after: %s", got.Status)
	}
	s.now = func() time.Time { return now.Add(2 * time.Hour) }
	s.Expire(context.Background())
	if got, _ := st.GetCommand(context.Background(), c.ID); got.Status != store.CommandExpired {
		t.Fatalf("after its not-after: %s", got.Status)
	}
	if last := log.entries[len(log.entries)-1]; last.Action != ActionExpired {
		t.Fatalf("last audit entry %+v", last)
	}
}

// TestResultWithoutItsEntryIsNotStored (AU-5): a device's answer whose
// command.completed entry cannot be written is refused, so the gateway
// does not acknowledge it and the agent sends it again; the command stays
// as it was until then, and the answer sent again is stored with its entry.
func TestResultWithoutItsEntryIsNotStored(t *testing.T) {
	ctx := context.Background()
	s, st, _ := newService(t)
	c, err := s.Issue(ctx, Request{DeviceID: "d1", Kind: protocol.CommandLock, Actor: "user:it@pd.example", Role: "it-admin", Source: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.DB().Exec("CREATE TRIGGER audit_ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	res := protocol.CommandResult{Ref: c.ID, Status: protocol.ResultDone}
	if _, err := s.Result(ctx, "d1", "10.0.0.7:5000", res); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("result: %v, want audit.ErrUnavailable", err)
	}
	if got, err := st.GetCommand(ctx, c.ID); err != nil || got.Status == store.CommandDone {
		t.Fatalf("command after a refused result: %+v %v, want it not done", got, err)
	}
	st.DB().Exec("DROP TRIGGER audit_ro")
	if _, err := s.Result(ctx, "d1", "10.0.0.7:5000", res); err != nil {
		t.Fatalf("the answer sent again: %v", err)
	}
	if got, err := st.GetCommand(ctx, c.ID); err != nil || got.Status != store.CommandDone {
		t.Fatalf("command after the answer sent again: %+v %v, want done", got, err)
	}
	es, err := st.ListAudit(ctx, store.AuditQuery{Action: ActionCompleted})
	if err != nil || len(es) != 1 {
		t.Fatalf("command.completed entries: %d %v, want 1", len(es), err)
	}
}
