package devices

import (
	"context"
	"strings"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/compliance"
	"github.com/cordon-mdm/cordon/server/store"
)

// MaxQuarantineText bounds the quarantine reasons sent to the agent, which
// shows them in its tray.
const MaxQuarantineText = 1024

// StateStore reads a device and its owner's devices.
type StateStore interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	DevicesOwnedBy(ctx context.Context, owner string) ([]store.Device, error)
}

// Compliance says where a device stands against the profiles.
type Compliance interface {
	StateOf(ctx context.Context, d *store.Device) (compliance.State, error)
}

// Standing answers where a device stands, as its agent shows it: its
// compliance and why it is quarantined, and the owner's devices it may
// report lost. It is apart from Service because it reads compliance,
// which is built after revocation (compliance blocks through the command
// queue, and the queue revokes).
type Standing struct {
	store      StateStore
	compliance Compliance
}

// NewStanding returns the state query.
func NewStanding(st StateStore, c Compliance) *Standing {
	return &Standing{store: st, compliance: c}
}

// State is the device's compliance and its owner's active devices; a
// device without an owner (or none active) lists only itself.
func (s *Standing) State(ctx context.Context, deviceID string) (protocol.DeviceState, error) {
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return protocol.DeviceState{}, err
	}
	cs, err := s.compliance.StateOf(ctx, d)
	if err != nil {
		return protocol.DeviceState{}, err
	}
	st := protocol.DeviceState{Compliance: cs.State}
	if cs.State == protocol.ComplianceQuarantined {
		st.Quarantine = input.Clip(strings.Join(cs.Reasons, "; "), MaxQuarantineText)
	}
	owned, err := s.store.DevicesOwnedBy(ctx, d.Owner)
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
