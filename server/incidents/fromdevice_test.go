package incidents

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// fromDevice is a service on a real SQLite store and audit log, with
// devices of two owners.
func fromDevice(t *testing.T) (*Service, *store.Store) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	enrolled := time.Now().UTC().Add(-24 * time.Hour)
	for _, d := range []store.Device{
		{ID: "laptop", Name: "laptop", Owner: "officer@agency", Status: store.StatusActive},
		{ID: "phone", Name: "phone", Owner: "officer@agency", Status: store.StatusActive},
		{ID: "old-phone", Name: "old phone", Owner: "officer@agency", Status: store.StatusRevoked},
		{ID: "desk", Name: "desk", Owner: "other@agency", Status: store.StatusActive},
		{ID: "kiosk", Name: "kiosk", Status: store.StatusActive},
		{ID: "kiosk-2", Name: "kiosk 2", Status: store.StatusActive},
	} {
		d.EnrolledAt = enrolled
		if err := st.DB().Create(&d).Error; err != nil {
			t.Fatal(err)
		}
	}
	return New(st, audit.New(st, nil)), st
}

func lossReport(deviceID string) protocol.IncidentReport {
	return protocol.IncidentReport{DeviceID: deviceID, Kind: KindLossOfControl, LockState: LockLocked,
		StartedAt: time.Now().UTC().Add(-2 * time.Minute), Location: "Main St"}
}

// TestReportFromDeviceItself: a device reports itself (no device named);
// the incident says who filed it through which device, and the same
// frame sent again returns the same incident.
func TestReportFromDeviceItself(t *testing.T) {
	s, st := fromDevice(t)
	ctx := context.Background()
	r := lossReport("")
	r.Reporter = "jdoe"
	inc, err := s.ReportFromDevice(ctx, "laptop", "10.0.0.7", "frame-1", r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if inc.DeviceID != "laptop" || inc.Reporter != "jdoe via device:laptop" || inc.Detection != "reported" ||
		inc.ReportRef == nil || *inc.ReportRef != "laptop/frame-1" {
		t.Errorf("incident %+v", inc)
	}
	again, err := s.ReportFromDevice(ctx, "laptop", "10.0.0.7", "frame-1", r, 0)
	if err != nil || again.ID != inc.ID {
		t.Errorf("the frame resent opened %v (%v), want the same incident %s", again, err, inc.ID)
	}
	es, err := st.ListAudit(ctx, store.AuditQuery{Target: "device:laptop"})
	if err != nil {
		t.Fatal(err)
	}
	var opened int
	for _, e := range es {
		if e.Actor == "device:laptop" && e.Source == "10.0.0.7" {
			opened++
		}
	}
	if opened == 0 {
		t.Errorf("no audit entry by device:laptop from 10.0.0.7: %+v", es)
	}
}

// TestReportFromDeviceForAnother: the laptop reports the owner's lost
// phone; the incident is the phone's, filed by the laptop.
func TestReportFromDeviceForAnother(t *testing.T) {
	s, _ := fromDevice(t)
	inc, err := s.ReportFromDevice(context.Background(), "laptop", "10.0.0.7", "frame-1", lossReport("phone"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if inc.DeviceID != "phone" || inc.Reporter != "device:laptop" || *inc.ReportRef != "laptop/frame-1" {
		t.Errorf("incident %+v", inc)
	}
}

// TestReportFromDeviceForbidden: another owner's device, a revoked or
// unknown one, or any other device when the reporter has no owner, is
// forbidden, and nothing is opened.
func TestReportFromDeviceForbidden(t *testing.T) {
	s, st := fromDevice(t)
	ctx := context.Background()
	for _, c := range []struct{ from, target string }{
		{"laptop", "desk"},
		{"laptop", "old-phone"},
		{"laptop", "no-such-device"},
		{"kiosk", "kiosk-2"},
	} {
		_, err := s.ReportFromDevice(ctx, c.from, "10.0.0.7", "frame-"+c.target, lossReport(c.target), 0)
		if !errors.Is(err, ErrForbidden) {
			t.Errorf("%s reporting %s: %v, want ErrForbidden", c.from, c.target, err)
		}
	}
	for _, id := range []string{"desk", "old-phone", "kiosk-2"} {
		if open, err := st.OpenIncidentFor(ctx, id); err != nil || open {
			t.Errorf("incident opened for %s (%v)", id, err)
		}
	}
}

// TestReportFromDeviceInvalid: a report that does not hold together is
// ErrInvalid, whoever it is for.
func TestReportFromDeviceInvalid(t *testing.T) {
	s, _ := fromDevice(t)
	r := lossReport("phone")
	r.Kind = "stolen-ish"
	if _, err := s.ReportFromDevice(context.Background(), "laptop", "10.0.0.7", "frame-1", r, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad kind: %v, want ErrInvalid", err)
	}
}

// TestReportFromDeviceUnknownReporter: a reporter the store does not
// know is an error, not a refusal: the gateway only lets enrolled
// devices in, so it is the store failing.
func TestReportFromDeviceUnknownReporter(t *testing.T) {
	s, _ := fromDevice(t)
	_, err := s.ReportFromDevice(context.Background(), "ghost", "10.0.0.7", "frame-1", lossReport("phone"), 0)
	if err == nil || errors.Is(err, ErrForbidden) || errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown reporter: %v, want the store's error", err)
	}
}
