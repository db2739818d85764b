package devices

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

func newStanding(t *testing.T) (*Standing, *store.Store) {
	t.Helper()
	e := newEnv(t)
	return NewStanding(e.st, compliance.New(e.st, e.log)), e.st
}

func addDevice(t *testing.T, st *store.Store, d store.Device) {
	t.Helper()
	d.EnrolledAt = time.Now().UTC()
	if d.Status == "" {
		d.Status = store.StatusActive
	}
	if err := st.DB().Create(&d).Error; err != nil {
		t.Fatal(err)
	}
}

// TestStateListsTheOwnersActiveDevices: the tray offers the owner's
// active devices to report lost, this one included, and nobody else's.
func TestStateListsTheOwnersActiveDevices(t *testing.T) {
	s, st := newStanding(t)
	addDevice(t, st, store.Device{ID: "d1", Name: "laptop", Platform: "linux", Owner: "officer@agency"})
	addDevice(t, st, store.Device{ID: "d2", Name: "phone", Platform: "android", Owner: "officer@agency"})
	addDevice(t, st, store.Device{ID: "d3", Name: "desk", Platform: "windows", Owner: "other@agency"})
	addDevice(t, st, store.Device{ID: "d4", Name: "old", Platform: "linux", Owner: "officer@agency", Status: store.StatusRevoked})
	got, err := s.State(context.Background(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	want := protocol.DeviceState{Compliance: protocol.ComplianceUnknown, Devices: []protocol.OwnedDevice{
		{ID: "d1", Name: "laptop", Platform: "linux"}, {ID: "d2", Name: "phone", Platform: "android"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("State = %+v, want %+v", got, want)
	}
	if err := got.Check(); err != nil {
		t.Errorf("the state does not pass the agent's check: %v", err)
	}
}

// TestStateWithoutOwner: a device enrolled without an owner lists only
// itself.
func TestStateWithoutOwner(t *testing.T) {
	s, st := newStanding(t)
	addDevice(t, st, store.Device{ID: "d1", Name: "kiosk", Platform: "linux"})
	addDevice(t, st, store.Device{ID: "d2", Name: "kiosk-2", Platform: "linux"})
	got, err := s.State(context.Background(), "d1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []protocol.OwnedDevice{{ID: "d1", Name: "kiosk", Platform: "linux"}}; !reflect.DeepEqual(got.Devices, want) {
		t.Errorf("Devices = %+v, want %+v", got.Devices, want)
	}
}

// TestStateQuarantineClipped: a quarantined device is told why, cut to
// MaxQuarantineText bytes without splitting a character.
func TestStateQuarantineClipped(t *testing.T) {
	s, st := newStanding(t)
	ctx := context.Background()
	addDevice(t, st, store.Device{ID: "d1", Name: "laptop", Platform: "linux", Owner: "officer@agency"})
	// Two bytes each, after an odd number of bytes: a byte cut at the
	// limit would split one.
	long := "x" + strings.Repeat("é", MaxQuarantineText)
	if _, err := st.SetQuarantine(ctx, "d1", long, "", time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	got, err := s.State(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Compliance != protocol.ComplianceQuarantined {
		t.Fatalf("Compliance = %q, want quarantined", got.Compliance)
	}
	q := got.Quarantine
	if len(q) > MaxQuarantineText || len(q) < MaxQuarantineText-1 || !utf8.ValidString(q) {
		t.Errorf("Quarantine is %d bytes (valid UTF-8: %v), want at most %d, cut on a character", len(q), utf8.ValidString(q), MaxQuarantineText)
	}
	if !strings.Contains(q, "quarantined by incident xé") {
		t.Errorf("Quarantine %.80q… does not say why", q)
	}
}

func TestStateUnknownDevice(t *testing.T) {
	s, _ := newStanding(t)
	if _, err := s.State(context.Background(), "nobody"); err == nil {
		t.Fatal("State of an unknown device succeeded")
	}
}
