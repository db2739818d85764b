package incidents

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// "Is this incident open" has one answer: the store's query, the
// incident's own Open and the order of Statuses agree at every step an
// incident takes, and the closed statuses are the last ones.
func TestOpenIsDecidedOnce(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	st.DB().Create(&store.Device{ID: "d1", Status: "active", EnrolledAt: t0})
	clk := &clock{t: t0.Add(time.Minute)}
	s := New(st, &auditLog{}, WithClock(clk.now))
	ctx := context.Background()
	end := t0.Add(30 * time.Second)
	inc, err := s.Open(ctx, Report{DeviceID: "d1", Kind: KindLossOfControl, LockState: LockLocked, StartedAt: t0, EndedAt: &end, Actor: "a"})
	if err != nil {
		t.Fatal(err)
	}
	firstClosed := slices.IndexFunc(Statuses, store.IncidentStatusClosed)
	if firstClosed < 1 || !slices.Equal(Statuses[firstClosed:], store.ClosedIncidentStatuses) {
		t.Fatalf("statuses %v: the closed ones %v are not the last", Statuses, store.ClosedIncidentStatuses)
	}
	for i, status := range Statuses {
		if status != inc.Status {
			if inc, err = s.Update(ctx, inc.ID, Update{Status: status, Actor: "laso"}); err != nil {
				t.Fatalf("to %s: %v", status, err)
			}
		}
		queried, err := st.OpenIncidentFor(ctx, "d1")
		if err != nil {
			t.Fatal(err)
		}
		if want := i < firstClosed; inc.Open() != want || queried != want {
			t.Errorf("%s: Open() %v, the store's query %v, want %v", status, inc.Open(), queried, want)
		}
	}
}
