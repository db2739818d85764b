package protocol

import (
	"errors"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
)

// Incident reports and the device's standing, as the agent and its tray
// see them.
const (
	// TypeIncidentReport (agent → server) files a loss-of-control, total
	// loss or compromise report. The agent spools it like a posture
	// report; the server's ack names the incident it opened, and a
	// report sent twice (a lost ack) opens one incident.
	TypeIncidentReport = "incident_report"
	// TypeDeviceState (server → agent) tells the agent its compliance and
	// which devices its owner has, so the tray can show both and offer a
	// report for a lost phone from the laptop. Sent after every hello and
	// whenever the device's standing changes.
	TypeDeviceState = "device_state"
	// TypeBluetoothRequest (agent → server) asks for conditional approval
	// of a Bluetooth device (agency policy T), on behalf of the local
	// user; the ack names the request. Spooled and idempotent like a
	// report.
	TypeBluetoothRequest = "bluetooth_request"
)

// BluetoothRequest is the body of a bluetooth_request frame.
type BluetoothRequest struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Class   uint32 `json:"class,omitempty"`
	Reason  string `json:"reason"`
	// Supervisor is who must endorse it (their actor or API key name).
	Supervisor string `json:"supervisor"`
	// Requester is the local account, from the agent's socket.
	Requester string `json:"requester,omitempty"`
}

// Check validates a BluetoothRequest.
func (b *BluetoothRequest) Check() error {
	if b.Address == "" || b.Reason == "" || b.Supervisor == "" {
		return errors.New("address, reason and supervisor are required")
	}
	if err := input.FreeText("reason", b.Reason, 1024); err != nil {
		return err
	}
	return checkLens(map[string]string{"address": b.Address, "name": b.Name, "supervisor": b.Supervisor, "requester": b.Requester}, 256)
}

// IncidentReport is the body of an incident_report frame. Its fields are
// those of POST /api/v1/incidents.
type IncidentReport struct {
	// DeviceID is the device the report is about: empty for the sending
	// device, or another device of the same owner.
	DeviceID    string     `json:"device_id,omitempty"`
	Kind        string     `json:"kind"`
	LockState   string     `json:"lock_state,omitempty"`
	StartedAt   time.Time  `json:"started_at"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
	Location    string     `json:"location,omitempty"`
	Latitude    *float64   `json:"latitude,omitempty"`
	Longitude   *float64   `json:"longitude,omitempty"`
	OutsideUS   bool       `json:"outside_us,omitempty"`
	Description string     `json:"description,omitempty"`
	// Reporter is the local account that filed it, as the agent
	// established it (peer credentials of its local socket).
	Reporter string `json:"reporter,omitempty"`
}

// Incident kinds and lock states a report may carry.
var (
	incidentKinds = map[string]bool{"loss_of_control": true, "total_loss": true, "compromise": true}
	lockStates    = map[string]bool{"": true, "locked": true, "unlocked": true, "unknown": true}
)

// MaxDescription is the longest incident description, in bytes.
const MaxDescription = 8192

// Check validates a report before it is spooled or stored. An ended_at
// ahead of the server's clock is the server's to refuse (it knows the
// time); see MaxClockSkew.
func (r *IncidentReport) Check() error {
	if !incidentKinds[r.Kind] {
		return fmt.Errorf("kind must be loss_of_control, total_loss or compromise, not %q", r.Kind)
	}
	if !lockStates[r.LockState] {
		return fmt.Errorf("lock_state must be locked, unlocked or unknown, not %q", r.LockState)
	}
	if r.StartedAt.IsZero() {
		return errors.New("started_at is required")
	}
	if r.EndedAt != nil && r.EndedAt.Before(r.StartedAt) {
		return errors.New("ended_at is before started_at")
	}
	if err := input.First(input.Latitude("latitude", r.Latitude), input.Longitude("longitude", r.Longitude),
		input.FreeText("description", r.Description, MaxDescription)); err != nil {
		return err
	}
	return checkLens(map[string]string{"device_id": r.DeviceID, "location": r.Location, "reporter": r.Reporter}, 1024)
}

// Compliance values in DeviceState. Until profiles are evaluated a
// device is "unknown"; a quarantined device is refused CJI access.
const (
	ComplianceUnknown      = "unknown"
	ComplianceCompliant    = "compliant"
	ComplianceNoncompliant = "noncompliant"
	ComplianceQuarantined  = "quarantined"
)

// DeviceState is the body of a device_state frame.
type DeviceState struct {
	Compliance string `json:"compliance"`
	// Quarantine says why, when Compliance is quarantined.
	Quarantine string `json:"quarantine,omitempty"`
	// Devices are the owner's enrolled devices, this one included.
	Devices []OwnedDevice `json:"devices,omitempty"`
}

// OwnedDevice is one of the owner's devices.
type OwnedDevice struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Platform string `json:"platform,omitempty"`
}

// Check validates a DeviceState.
func (d *DeviceState) Check() error {
	switch d.Compliance {
	case ComplianceUnknown, ComplianceCompliant, ComplianceNoncompliant, ComplianceQuarantined:
	default:
		return fmt.Errorf("unknown compliance %q", d.Compliance)
	}
	if len(d.Devices) > 1000 {
		return errors.New("too many devices")
	}
	for _, od := range d.Devices {
		if od.ID == "" {
			return errors.New("device without id")
		}
		if err := checkLens(map[string]string{"id": od.ID, "name": od.Name, "platform": od.Platform}, 256); err != nil {
			return err
		}
	}
	return nil
}
