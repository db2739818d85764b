package commands

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

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
