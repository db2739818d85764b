package incidents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// ErrForbidden: the reporter may not report for the device it named.
var ErrForbidden = errors.New("forbidden")

// ReportFromDevice opens an incident for the report in frame frameID,
// sent by device from over the agents' channel from address remote; a
// frame sent again returns the incident it opened. A device may report
// itself or another active device of the same owner (the laptop
// reporting the lost phone); any other device is ErrForbidden, and a
// report that does not hold together is ErrInvalid. clockAhead is how far
// at least the device's clock runs ahead of the server's.
func (s *Service) ReportFromDevice(ctx context.Context, from, remote, frameID string, r protocol.IncidentReport, clockAhead time.Duration) (*store.Incident, error) {
	target := r.DeviceID
	if target == "" {
		target = from
	}
	if target != from {
		if err := s.mayReportFor(ctx, from, target); err != nil {
			return nil, err
		}
	}
	reporter := "device:" + from
	if r.Reporter != "" {
		reporter = r.Reporter + " via device:" + from
	}
	return s.Open(ctx, Report{DeviceID: target, Kind: r.Kind, LockState: r.LockState,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, Location: r.Location, Latitude: r.Latitude, Longitude: r.Longitude,
		OutsideUS: r.OutsideUS, Description: r.Description, Actor: "device:" + from, Source: remote,
		Reporter: reporter, Ref: from + "/" + frameID, ClockAhead: clockAhead})
}

// mayReportFor: device from reports for another device, which must be
// active and have the same (known) owner. Unknown and not-yours answer
// alike, so a device cannot probe for other owners' device ids.
func (s *Service) mayReportFor(ctx context.Context, from, target string) error {
	self, err := s.store.GetDevice(ctx, from)
	if err != nil {
		return err
	}
	other, err := s.store.GetDevice(ctx, target)
	if errors.Is(err, store.ErrNotFound) || err == nil && (self.Owner == "" || other.Owner != self.Owner || other.Status != store.StatusActive) {
		return fmt.Errorf("%w: device %s is not another enrolled device of this device's owner", ErrForbidden, target)
	}
	return err
}
