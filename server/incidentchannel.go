package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/gateway"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// agentIncidents serves incident reports that arrive over the agents'
// channel, and the device state the tray shows.
type agentIncidents struct{ s *Server }

// Report opens an incident for a report from device from. A device may
// report itself or another active device of the same owner (the laptop
// reporting the lost phone); anything else is refused.
func (a agentIncidents) Report(ctx context.Context, from, remote, frameID string, r protocol.IncidentReport, clockAhead time.Duration) (string, error) {
	s := a.s
	target := r.DeviceID
	if target == "" {
		target = from
	}
	if target != from {
		self, err := s.Store.GetDevice(ctx, from)
		if err != nil {
			return "", err
		}
		other, err := s.Store.GetDevice(ctx, target)
		if errors.Is(err, store.ErrNotFound) || err == nil && (self.Owner == "" || other.Owner != self.Owner || other.Status != store.StatusActive) {
			return "", fmt.Errorf("%w: device %s is not another enrolled device of this device's owner", gateway.ErrRefused, target)
		}
		if err != nil {
			return "", err
		}
	}
	reporter := "device:" + from
	if r.Reporter != "" {
		reporter = r.Reporter + " via device:" + from
	}
	inc, err := s.Incidents.Open(ctx, incidents.Report{DeviceID: target, Kind: r.Kind, LockState: r.LockState,
		StartedAt: r.StartedAt, EndedAt: r.EndedAt, Location: r.Location, Latitude: r.Latitude, Longitude: r.Longitude,
		OutsideUS: r.OutsideUS, Description: r.Description, Actor: "device:" + from, Source: remote,
		Reporter: reporter, Ref: from + "/" + frameID, ClockAhead: clockAhead})
	if errors.Is(err, incidents.ErrInvalid) {
		return "", fmt.Errorf("%w: %v", gateway.ErrRefused, err)
	}
	if err != nil {
		return "", err
	}
	return inc.ID, nil
}

// State is the device's compliance and its owner's devices.
func (a agentIncidents) State(ctx context.Context, deviceID string) (protocol.DeviceState, error) {
	d, err := a.s.Store.GetDevice(ctx, deviceID)
	if err != nil {
		return protocol.DeviceState{}, err
	}
	cs, err := a.s.Compliance.StateOf(ctx, d)
	if err != nil {
		return protocol.DeviceState{}, err
	}
	st := protocol.DeviceState{Compliance: cs.State}
	if cs.State == protocol.ComplianceQuarantined {
		st.Quarantine = strings.Join(cs.Reasons, "; ")
		if len(st.Quarantine) > 1024 {
			st.Quarantine = st.Quarantine[:1024]
		}
	}
	owned, err := a.s.Store.DevicesOwnedBy(ctx, d.Owner)
	if err != nil {
		return st, err
	}
	for _, o := range owned {
		st.Devices = append(st.Devices, protocol.OwnedDevice{ID: o.ID, Name: o.Name, Platform: o.Platform})
	}
	if len(st.Devices) == 0 {
		st.Devices = []protocol.OwnedDevice{{ID: d.ID, Name: d.Name, Platform: d.Platform}}
	}
	return st, nil
}

// agentCompliance is the compliance service as the gateway sees it; it
// maps the service's refusals to the gateway's, which the agent drops
// rather than resends.
type agentCompliance struct{ *compliance.Service }

func (a agentCompliance) AgentRequest(ctx context.Context, deviceID, remote, frameID string, r protocol.BluetoothRequest) (string, error) {
	id, err := a.Service.AgentRequest(ctx, deviceID, remote, frameID, r)
	if errors.Is(err, compliance.ErrRefused) || errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("%w: %v", gateway.ErrRefused, err)
	}
	return id, err
}
