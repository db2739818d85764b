package audit

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The entry count is the chain's head: it moves with each entry written,
// and a write refused by the database is not counted.
func TestEntriesCountWhatWasWritten(t *testing.T) {
	l, st := newLog(t)
	c := l.Collectors()[0]
	if n := testutil.ToFloat64(c); n != 0 {
		t.Fatalf("an empty trail counts %v", n)
	}
	record(t, l, 3)
	if n := testutil.ToFloat64(c); n != 3 {
		t.Fatalf("%v entries counted, want 3", n)
	}
	if err := st.DB().Exec("CREATE TRIGGER audit_ro BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END").Error; err != nil {
		t.Fatal(err)
	}
	if err := l.Record(context.Background(), Entry{Actor: "local:t", Source: "local", Action: "test", Outcome: Success}); err == nil {
		t.Fatal("the refused append succeeded")
	}
	if n := testutil.ToFloat64(c); n != 3 {
		t.Fatalf("%v entries counted after a refused one, want 3", n)
	}
}

// The checkpoint age is absent before the first checkpoint, then the
// time since the newest on the anchor's clock.
func TestCheckpointAgeIsAbsentThenAged(t *testing.T) {
	l, st := newLog(t)
	clock := time.Now().UTC().Truncate(time.Second)
	a, err := NewAnchor(l, st, t.TempDir(), true, WithAnchorClock(func() time.Time { return clock }))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a.Collectors()...)
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Fatalf("before any checkpoint: %d samples, %v; want none", n, err)
	}
	record(t, l, 2)
	if _, err := a.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(90 * time.Minute)
	if n := testutil.ToFloat64(a.Collectors()[0]); n != 5400 {
		t.Fatalf("age %v, want 5400 s", n)
	}
}
