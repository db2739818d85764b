package incidents

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Statuses, in the order an incident moves through them: the open ones,
// then the closed ones, which the store declares (one answer to "is this
// incident open", for its query and for every rule here).
var Statuses = append([]string{"reported", "triaged", "contained"}, store.ClosedIncidentStatuses...)

// Audit actions.
const (
	ActionReported  = "incident.reported"
	ActionEscalated = "incident.escalated"
	ActionUpdated   = "incident.updated"
	ActionDetected  = "incident.detected"
	// Quarantine is put on and lifted by incidents; the device is the
	// target.
	ActionQuarantined      = "device.quarantined"
	ActionQuarantineLifted = "device.quarantine_lifted"
)

// Store is what the service keeps incidents in, one small interface per
// concern; New takes them all because the one service opens, escalates
// and updates.
type Store interface {
	DeviceReader
	IncidentStore
	FormStore
	Transactor
	MetricsReader
}

// DeviceReader reads the devices incidents are about and their lock
// timelines.
type DeviceReader interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	// SilentDevices is the sweep's candidates: active, offline since
	// cutoff, lock state lockState at now, no open incident.
	SilentDevices(ctx context.Context, lockState string, cutoff, now time.Time) ([]store.Device, error)
}

// IncidentStore keeps incidents and their timelines. The quarantine is
// put on and lifted in the transaction of its audit entry (Transactor).
type IncidentStore interface {
	SaveIncident(ctx context.Context, inc *store.Incident, events ...store.IncidentEvent) error
	GetIncident(ctx context.Context, id string) (*store.Incident, error)
	DueEscalations(ctx context.Context, now time.Time) ([]store.Incident, error)
	OpenIncidentFor(ctx context.Context, deviceID string) (bool, error)
	IncidentByRef(ctx context.Context, ref string) (*store.Incident, error)
}

// Transactor runs a change and its audit entry in one transaction (AU-5).
type Transactor interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Auditor records security events; RecordTx appends within the
// caller's transaction.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Notifier tells the LASOs and IT. It is called after the change is
// stored, for every new incident and every escalation.
type Notifier interface {
	Notify(ctx context.Context, inc *store.Incident, why string)
}

// Errors the API maps to statuses.
var (
	ErrInvalid    = errors.New("invalid incident")
	ErrTransition = errors.New("status can only move forward: " + strings.Join(Statuses, ", "))
)

// Locker queues a remote lock (the remote-command queue).
type Locker interface {
	Lock(ctx context.Context, deviceID, reason string) (commandID string, err error)
}

// Service runs incidents.
type Service struct {
	store         Store
	audit         Auditor
	notify        Notifier
	locker        Locker
	settings      Settings
	playbookRules Playbook
	changed       func(deviceID string)
	now           func() time.Time
	log           *slog.Logger
	// detectSilent opens incidents for devices last seen unlocked.
	detectSilent bool
	// lostMode is Apple's lost mode; lostModeReader says which devices
	// have it (WithLostMode).
	lostMode       LostMode
	lostModeReader LostModeReader
	metrics        metrics
}

// Option configures a Service.
type Option func(*Service)

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithSettings sets the line and the momentary threshold.
func WithSettings(st Settings) Option { return func(s *Service) { s.settings = st } }

// WithNotifier sets who is told.
func WithNotifier(n Notifier) Option { return func(s *Service) { s.notify = n } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithLocker lets the playbook lock devices.
func WithLocker(l Locker) Option { return func(s *Service) { s.locker = l } }

// WithPlaybook replaces the default playbook.
func WithPlaybook(p Playbook) Option { return func(s *Service) { s.playbookRules = p } }

// WithDeviceChanged is called after a device's standing changed
// (quarantined or released), so the server can tell its agent.
func WithDeviceChanged(f func(deviceID string)) Option { return func(s *Service) { s.changed = f } }

// WithSilentUnlockedDetection turns server-detected losses on or off
// (default on).
func WithSilentUnlockedDetection(on bool) Option { return func(s *Service) { s.detectSilent = on } }

// New returns a Service.
func New(st Store, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, settings: DefaultSettings, now: time.Now,
		log: slog.New(slog.DiscardHandler), detectSilent: true, playbookRules: DefaultPlaybook,
		metrics: newMetrics()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Limits on incident text (README, "Limits on input"); the description's
// is protocol.MaxDescription, shared with the agent channel.
const (
	MaxID          = 64
	MaxLocation    = 1024
	MaxDisposition = 4096
)

// recordTx appends the incident's entry within tx.
func (s *Service) recordTx(ctx context.Context, tx audit.Appender, actor, source, action string, inc *store.Incident, extra map[string]string) error {
	return s.audit.RecordTx(ctx, tx, s.entry(actor, source, action, inc, extra))
}

func (s *Service) entry(actor, source, action string, inc *store.Incident, extra map[string]string) audit.Entry {
	d := map[string]string{"incident": inc.ID, "kind": inc.Kind, "category": inc.Category,
		"duration_class": inc.DurationClass, "severity": inc.Severity, "status": inc.Status}
	for k, v := range extra {
		d[k] = v
	}
	return audit.Entry{Actor: actor, Source: source, Action: action, Target: "device:" + inc.DeviceID,
		Outcome: audit.Success, Details: d}
}
