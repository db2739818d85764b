package incidents

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/store"
)

// LostMode is Apple's lost mode for a supervised device
// (*applemdm.LostMode). Each method queues its MDM commands under the
// incident and records the step on the incident's timeline and in the
// audit trail itself, with actor and source; the device's answers come
// back to the implementation, not here. An error means the step was not
// taken (or its failure is already on the timeline).
type LostMode interface {
	// Enable locks the device into lost mode and asks where it is.
	Enable(ctx context.Context, deviceID, incidentID, actor, source string) error
	Locate(ctx context.Context, deviceID, incidentID, actor, source string) error
	PlaySound(ctx context.Context, deviceID, incidentID, actor, source string) error
	Disable(ctx context.Context, deviceID, incidentID, actor, source string) error
}

// LostModeReader says whether a device is a supervised Apple device and
// which incident its lost mode is for, and reads the timeline the
// playbook's lost-mode step is taken once on (*store.Store).
type LostModeReader interface {
	GetAppleEnrollment(ctx context.Context, deviceID string) (*store.AppleEnrollment, error)
	IncidentTimeline(ctx context.Context, id string) ([]store.IncidentEvent, error)
}

// WithLostMode lets the playbook, the LASO and resolution use Apple's
// lost mode. Without it the playbook's lost_mode action does nothing.
func WithLostMode(lm LostMode, r LostModeReader) Option {
	return func(s *Service) { s.lostMode, s.lostModeReader = lm, r }
}

// ErrNoLostMode refuses a lost-mode action on a device that has none: not
// an Apple device, not supervised, or not in lost mode for this incident.
var ErrNoLostMode = errors.New("lost mode is not available")

// What a LASO can ask of lost mode.
const (
	LostModeEnable  = "enable"
	LostModeLocate  = "locate"
	LostModeSound   = "sound"
	LostModeDisable = "disable"
)

// lostModeFor is why the device cannot have lost mode ("" when it can),
// and its enrollment.
func (s *Service) lostModeFor(ctx context.Context, deviceID string) (*store.AppleEnrollment, string, error) {
	if s.lostMode == nil {
		return nil, "Apple MDM is not running on this server", nil
	}
	e, err := s.lostModeReader.GetAppleEnrollment(ctx, deviceID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, "the device is not managed through Apple MDM (only supervised iPhones and iPads have lost mode)", nil
	case err != nil:
		return nil, "", err
	case !e.Supervised:
		return e, "the Apple device is not supervised, and Apple offers lost mode on supervised devices only", nil
	}
	d, err := s.store.GetDevice(ctx, deviceID)
	if err != nil {
		return nil, "", err
	}
	if d.Platform == "macos" {
		// A Mac has no lost mode; its lock (DeviceLock with a PIN) is
		// the playbook's lock action.
		return e, "a Mac has no lost mode (only supervised iPhones and iPads do)", nil
	}
	return e, "", nil
}

// playbookLostMode enables lost mode for an ongoing incident, once: the
// timeline's first lost_mode event (enabled, or why it did not apply)
// says it was taken. It returns the event to add when lost mode did not
// apply or could not be checked; the implementation records its own.
func (s *Service) playbookLostMode(ctx context.Context, inc *store.Incident, now time.Time) []store.IncidentEvent {
	if s.lostModeReader == nil {
		return nil
	}
	tl, err := s.lostModeReader.IncidentTimeline(ctx, inc.ID)
	if err != nil {
		s.log.Error("playbook lost mode", "incident", inc.ID, "err", err)
		return nil
	}
	for _, e := range tl {
		if e.Action == ActLostMode {
			return nil
		}
	}
	_, why, err := s.lostModeFor(ctx, inc.DeviceID)
	if err != nil {
		return []store.IncidentEvent{{At: now, Actor: "playbook", Action: ActLostMode, Detail: "lost mode could not be checked: " + err.Error()}}
	}
	if why != "" {
		return []store.IncidentEvent{{At: now, Actor: "playbook", Action: ActLostMode, Detail: "lost mode does not apply: " + why}}
	}
	if err := s.lostMode.Enable(ctx, inc.DeviceID, inc.ID, "playbook", "local"); err != nil {
		s.log.Error("playbook lost mode", "incident", inc.ID, "err", err)
	}
	return nil
}

// LostModeAction is a LASO's lost-mode step on an incident's device:
// enable, locate (again), sound, disable. Enable, locate and sound need
// the incident open; locate, sound and disable need lost mode on for this
// incident. A device without lost mode is ErrNoLostMode.
func (s *Service) LostModeAction(ctx context.Context, incidentID, action, actor, source string) (*store.Incident, error) {
	switch action {
	case LostModeEnable, LostModeLocate, LostModeSound, LostModeDisable:
	default:
		return nil, fmt.Errorf("%w: action must be enable, locate, sound or disable", ErrInvalid)
	}
	inc, err := s.store.GetIncident(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	e, why, err := s.lostModeFor(ctx, inc.DeviceID)
	if err != nil {
		return nil, err
	}
	if why != "" {
		return nil, fmt.Errorf("%w: %s", ErrNoLostMode, why)
	}
	if action != LostModeDisable && !inc.Open() {
		return nil, fmt.Errorf("%w: the incident is %s", ErrInvalid, inc.Status)
	}
	if action != LostModeEnable && e.LostModeIncident != inc.ID {
		return nil, fmt.Errorf("%w: lost mode is not enabled for this incident", ErrNoLostMode)
	}
	do := map[string]func(ctx context.Context, deviceID, incidentID, actor, source string) error{
		LostModeEnable: s.lostMode.Enable, LostModeLocate: s.lostMode.Locate,
		LostModeSound: s.lostMode.PlaySound, LostModeDisable: s.lostMode.Disable}[action]
	if err := do(ctx, inc.DeviceID, inc.ID, actor, source); err != nil {
		return nil, err
	}
	return inc, nil
}

// resolvedLostMode takes the device out of lost mode when the incident
// that put it there is resolved or closed: the device is back, and only
// MDM can release it. A failure is logged; the LASO can disable it from
// the incident (LostModeAction works on a closed incident for disable).
func (s *Service) resolvedLostMode(ctx context.Context, inc *store.Incident, actor, source string) {
	if s.lostModeReader == nil {
		return
	}
	e, why, err := s.lostModeFor(ctx, inc.DeviceID)
	if err != nil || why != "" || e.LostModeIncident != inc.ID {
		if err != nil {
			s.log.Error("lost mode on resolution", "incident", inc.ID, "err", err)
		}
		return
	}
	if err := s.lostMode.Disable(ctx, inc.DeviceID, inc.ID, actor, source); err != nil {
		s.log.Error("lost mode on resolution", "incident", inc.ID, "err", err)
	}
}

// DeviceLocation is where a device in lost mode said it was, as its
// "located" timeline event records it.
type DeviceLocation struct {
	Latitude  float64
	Longitude float64
	// Accuracy is the horizontal radius of uncertainty in metres; nil
	// when the device did not know it.
	Accuracy *float64
	// DeviceTime is the device's own Timestamp: untrusted, shown as the
	// device's. ReceivedAt is the server's receipt of the answer.
	DeviceTime *time.Time
	ReceivedAt time.Time
}

// ActionLocated is the timeline action of a device's location.
const ActionLocated = "located"

// Detail renders l as the located event's text, which LastDeviceLocation
// reads back: the timeline is where it is kept.
func (l DeviceLocation) Detail() string {
	acc, dt := "unknown", "unknown"
	if l.Accuracy != nil {
		acc = strconv.FormatFloat(*l.Accuracy, 'f', -1, 64) + " m"
	}
	if l.DeviceTime != nil {
		dt = l.DeviceTime.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("latitude %s, longitude %s, accuracy %s, device time %s, received %s",
		strconv.FormatFloat(l.Latitude, 'f', -1, 64), strconv.FormatFloat(l.Longitude, 'f', -1, 64), acc, dt,
		l.ReceivedAt.UTC().Format(time.RFC3339Nano))
}

// LastDeviceLocation is the newest location on a timeline, nil when
// there is none.
func LastDeviceLocation(tl []store.IncidentEvent) *DeviceLocation {
	for i := len(tl) - 1; i >= 0; i-- {
		if tl[i].Action != ActionLocated {
			continue
		}
		if l, ok := parseLocation(tl[i].Detail); ok {
			return l
		}
	}
	return nil
}

func parseLocation(detail string) (*DeviceLocation, bool) {
	// What follows the fields (the command it answered) is not a field.
	detail, _, _ = strings.Cut(detail, " (")
	f := map[string]string{}
	for _, part := range strings.Split(detail, ", ") {
		k, v, _ := strings.Cut(part, " ")
		if k == "device" {
			k, v = "device time", strings.TrimPrefix(v, "time ")
		}
		f[k] = v
	}
	var l DeviceLocation
	var err error
	if l.Latitude, err = strconv.ParseFloat(f["latitude"], 64); err != nil {
		return nil, false
	}
	if l.Longitude, err = strconv.ParseFloat(f["longitude"], 64); err != nil {
		return nil, false
	}
	if l.ReceivedAt, err = time.Parse(time.RFC3339Nano, f["received"]); err != nil {
		return nil, false
	}
	if a, err := strconv.ParseFloat(strings.TrimSuffix(f["accuracy"], " m"), 64); err == nil {
		l.Accuracy = &a
	}
	if t, err := time.Parse(time.RFC3339, f["device time"]); err == nil {
		l.DeviceTime = &t
	}
	return &l, true
}
