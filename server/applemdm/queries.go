package applemdm

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// The posture queries, Apple's request types.
const (
	ReqDeviceInformation        = "DeviceInformation"
	ReqSecurityInfo             = "SecurityInfo"
	ReqProfileList              = "ProfileList"
	ReqInstalledApplicationList = "InstalledApplicationList"
)

// DefaultQueryInterval is how often an enrolled device is asked for its
// posture when WithQueries is given none: often enough that a passcode
// removed in the morning is a finding by noon, rare enough that a
// phone's battery does not notice.
const DefaultQueryInterval = 4 * time.Hour

// deviceQueries are the DeviceInformation keys Cordon asks for. Apple
// has no key for the location-services setting itself;
// IsDeviceLocatorServiceEnabled (Find My) is the nearest fact it
// reports. IsAppleSilicon gives a Mac's architecture.
var deviceQueries = []string{"OSVersion", "BuildVersion", "Model", "ModelName", "ProductName", "SerialNumber",
	"IsSupervised", "BluetoothMAC", "IsRoaming", "DeviceName", "IsDeviceLocatorServiceEnabled",
	"IsActivationLockEnabled", "IsAppleSilicon"}

// QueryStore is what the regular queries need of the store
// (*store.Store): which devices are enrolled and when each was last
// asked, and what an answer records about the enrollment.
type QueryStore interface {
	DueAppleEnrollments(ctx context.Context, askedBefore time.Time) ([]store.AppleEnrollment, error)
	UpdateAppleEnrollment(ctx context.Context, deviceID string, cols map[string]any, now time.Time) error
}

// Profiles finds the compliance profile a device is held to: its
// group's, the one compliance evaluates it against.
type Profiles interface {
	ProfileFor(ctx context.Context, deviceID string) (*profiles.Profile, error)
}

// Recorder writes an audit entry (*audit.Log).
type Recorder interface {
	Record(ctx context.Context, e audit.Entry) error
}

type queries struct {
	store    QueryStore
	profiles Profiles
	audit    Recorder
	every    time.Duration
}

// WithQueries asks every enrolled device for its posture each interval
// (DefaultQueryInterval when 0) and right after it enrolls, installs
// Cordon's passcode profile (rendered from the device's compliance
// profile pr finds) and keeps it installed, and records the
// installations' outcomes with rec. It needs WithPosture for the answers
// to land.
func WithQueries(st QueryStore, pr Profiles, rec Recorder, interval time.Duration) Option {
	if interval <= 0 {
		interval = DefaultQueryInterval
	}
	return func(c *config) { c.queries = &queries{store: st, profiles: pr, audit: rec, every: interval} }
}

// postureRound is the posture queries, each under a fresh reference.
func postureRound() []Command {
	return []Command{
		{RequestType: ReqDeviceInformation, Ref: uuid.NewString(), Payload: map[string]any{"Queries": deviceQueries}},
		{RequestType: ReqSecurityInfo, Ref: uuid.NewString()},
		{RequestType: ReqProfileList, Ref: uuid.NewString()},
		{RequestType: ReqInstalledApplicationList, Ref: uuid.NewString(), Payload: map[string]any{"ManagedAppsOnly": false}},
		{RequestType: ReqAvailableOSUpdates, Ref: uuid.NewString()},
	}
}

// Refresh asks the device for a fresh posture report now: the posture
// queries, and a push. A device Apple MDM does not manage is
// ErrNotEnrolled, which is also store.ErrNotFound.
func (m *MDM) Refresh(ctx context.Context, deviceID string) error {
	if err := m.Send(ctx, deviceID, postureRound()...); err != nil {
		return err
	}
	return m.markQueried(ctx, deviceID, time.Now())
}

// QueryDue sends the posture queries to every enrolled device not asked
// within the interval (never-asked ones first), and records when. It is
// the server's sweep; one device's failure does not stop the others.
func (m *MDM) QueryDue(ctx context.Context, now time.Time) error {
	if m.queries == nil {
		return nil
	}
	es, err := m.queries.store.DueAppleEnrollments(ctx, now.Add(-m.queries.every))
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range es {
		if m.stillQueued(ctx, e) {
			// Nothing answered since the last round: a phone in a drawer
			// must not come back to weeks of rounds. Wake it instead.
			m.Wake(ctx, e.DeviceID, e.UDID)
			if err := m.markQueried(ctx, e.DeviceID, now); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		cmds := postureRound()
		if e.QueriedAt == nil {
			// Never asked: its enrollment hook did not run to the end.
			cmds = append(m.profileInstall(ctx, e.DeviceID), cmds...)
		}
		if err := m.Send(ctx, e.DeviceID, cmds...); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := m.markQueried(ctx, e.DeviceID, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stillQueued: the device was asked and has not answered since (its
// latest report is older than the round), or it is revoked and cannot
// answer at all.
func (m *MDM) stillQueued(ctx context.Context, e store.AppleEnrollment) bool {
	if e.QueriedAt == nil || m.posture == nil {
		return false
	}
	d, err := m.posture.GetDevice(ctx, e.DeviceID)
	if err != nil {
		return false
	}
	return d.Status != store.StatusActive || d.PostureAt == nil || d.PostureAt.Before(*e.QueriedAt)
}

// enrolled runs when a device completes its enrollment (TokenUpdate): an
// enrollment never asked is sent Cordon's passcode profile and the
// posture queries at once. A failure is logged, not returned: the
// device's check-in succeeded, and the sweep sends what was not sent.
func (m *MDM) enrolled(ctx context.Context, deviceID string) {
	if m.queries == nil {
		return
	}
	e, err := m.devices.GetAppleEnrollment(ctx, deviceID)
	if err != nil || e.QueriedAt != nil {
		return
	}
	if err := m.Send(ctx, deviceID, append(m.profileInstall(ctx, deviceID), postureRound()...)...); err != nil {
		m.log.Warn("posture queries after enrollment; the sweep sends them again", "device_id", deviceID, "err", err)
		return
	}
	if err := m.markQueried(ctx, deviceID, time.Now()); err != nil {
		m.log.Warn("posture queries after enrollment", "device_id", deviceID, "err", err)
	}
}

func (m *MDM) markQueried(ctx context.Context, deviceID string, now time.Time) error {
	if m.queries == nil {
		return nil
	}
	at := now.UTC()
	return m.queries.store.UpdateAppleEnrollment(ctx, deviceID, map[string]any{"queried_at": &at}, at)
}
