package compliance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestRequestStepsNeedTheirEntry (AU-5): with the audit table refusing
// inserts (a real trigger), a Bluetooth request is not filed and an
// endorsement does not happen; once entries can be written, both go
// through and are in the trail.
func TestRequestStepsNeedTheirEntry(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.DB().Create(&store.Device{ID: "d1", Status: store.StatusActive, EnrolledAt: time.Now().Add(-time.Hour)}).Error; err != nil {
		t.Fatal(err)
	}
	s := New(st, audit.New(st, nil))
	readOnly := func(on bool) {
		t.Helper()
		q := "DROP TRIGGER audit_ro"
		if on {
			q = "CREATE TRIGGER audit_ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END"
		}
		if err := st.DB().Exec(q).Error; err != nil {
			t.Fatal(err)
		}
	}
	in := Request{DeviceID: "d1", Address: "11:22:33:44:55:66", Reason: "body camera", Supervisor: "sgt-ortiz"}

	readOnly(true)
	if _, err := s.CreateRequest(ctx, in, "apikey:officer", "127.0.0.1"); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("filing without its entry: %v", err)
	}
	if rs, _ := st.ListBluetoothRequests(ctx); len(rs) != 0 {
		t.Fatalf("a request was filed without its audit entry: %+v", rs)
	}
	readOnly(false)
	r, err := s.CreateRequest(ctx, in, "apikey:officer", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}

	readOnly(true)
	if _, err := s.Endorse(ctx, r.ID, "apikey:sgt-ortiz", "127.0.0.1"); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("endorsing without its entry: %v", err)
	}
	if got, _ := st.GetBluetoothRequest(ctx, r.ID); got.Status != "pending" {
		t.Fatalf("endorsed without its audit entry: %s", got.Status)
	}
	readOnly(false)
	if _, err := s.Endorse(ctx, r.ID, "apikey:sgt-ortiz", "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	for _, action := range []string{ActionRequestCreated, ActionRequestEndorsed} {
		if es, _ := st.ListAudit(ctx, store.AuditQuery{Action: action}); len(es) != 1 {
			t.Errorf("%s entries: %d, want 1", action, len(es))
		}
	}
}
