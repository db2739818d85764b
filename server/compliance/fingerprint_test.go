package compliance

import (
	"context"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// TestARepeatedReportIsNotEvaluatedAgainAfterARestart: the fingerprint of
// the report a device's findings came from is the database's, so a
// service started afresh on the same store (a restart, or another
// process) does not evaluate the same report again, evaluates a changed
// one, and evaluates again whatever the report once a profile change
// cleared the fingerprints.
func TestARepeatedReportIsNotEvaluatedAgainAfterARestart(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	enrolled := time.Now().UTC().Truncate(time.Second)
	tok := &store.EnrollmentToken{ID: "tok", Hash: []byte("secret"), ExpiresAt: enrolled.Add(time.Hour), Uses: 1, UsesLeft: 1, CreatedAt: enrolled}
	if err := st.CreateToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := st.Enroll(ctx, tok.ID, tok.Hash, func(store.EnrollmentToken) (*store.Device, *store.Certificate, error) {
		return &store.Device{ID: "d1", Status: store.StatusActive, EnrolledAt: enrolled},
			&store.Certificate{Serial: "c1", DeviceID: "d1", NotBefore: enrolled, NotAfter: enrolled.Add(24 * time.Hour), IssuedAt: enrolled}, nil
	}); err != nil {
		t.Fatal(err)
	}
	clock := enrolled
	service := func() *Service {
		s := New(st, nopAuditor{}, WithClock(func() time.Time { return clock }))
		if err := s.Init(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// evaluatedAt is when the device was last evaluated after a report
	// at the clock's next minute.
	evaluatedAt := func(s *Service, p protocol.Posture) time.Time {
		t.Helper()
		clock = clock.Add(time.Minute)
		p.CollectedAt = clock
		if err := s.Evaluate(ctx, "d1", p); err != nil {
			t.Fatal(err)
		}
		d, err := st.GetDevice(ctx, "d1")
		if err != nil || d.ComplianceAt == nil {
			t.Fatalf("device %+v %v", d, err)
		}
		return d.ComplianceAt.UTC()
	}
	first := service()
	at := evaluatedAt(first, good())
	if !at.Equal(clock) {
		t.Fatalf("first report evaluated at %v, want %v", at, clock)
	}
	open, err := st.OpenFindings(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}

	restarted := service()
	if again := evaluatedAt(restarted, good()); !again.Equal(at) {
		t.Fatalf("the same report was evaluated again after the restart (at %v)", again)
	}
	unencrypted := good()
	unencrypted.Disk = &protocol.DiskEncryption{State: protocol.DiskUnencrypted, Volume: "/"}
	if changed := evaluatedAt(restarted, unencrypted); !changed.Equal(clock) {
		t.Fatalf("a changed report was not evaluated (last at %v)", changed)
	}
	if now, err := st.OpenFindings(ctx, "d1"); err != nil || len(now) <= len(open) {
		t.Fatalf("unencrypted disk: %d open findings (%v), before %d", len(now), err, len(open))
	}
	if back := evaluatedAt(first, good()); !back.Equal(clock) {
		t.Fatal("the first service skipped a report on its own memory though the other had evaluated another since")
	}

	if err := st.ForgetEvaluations(ctx); err != nil { // what a profile change does first
		t.Fatal(err)
	}
	if after := evaluatedAt(service(), good()); !after.Equal(clock) {
		t.Fatal("after the fingerprints were cleared, the same report was not evaluated")
	}
}
