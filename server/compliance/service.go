package compliance

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cordon-mdm/cordon/internal/keylock"
	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Device states.
const (
	StateUnknown      = protocol.ComplianceUnknown // never evaluated
	StateCompliant    = protocol.ComplianceCompliant
	StateNoncompliant = protocol.ComplianceNoncompliant // findings, all within grace
	StateQuarantined  = protocol.ComplianceQuarantined  // a finding past grace, or an incident
)

// Audit actions.
const (
	ActionProfileUpdated  = "profile.updated"
	ActionProfileRejected = "profile.rejected"
	ActionChanged         = "compliance.changed"
	ActionGroupChanged    = "device.group_changed"
)

// Store is what compliance keeps, one small interface per concern; New
// takes them all because the one service evaluates, records and answers.
type Store interface {
	DeviceReader
	ProfileStore
	FindingStore
	BluetoothStore
	ClockRecords
	Transactor
	DeviceCounter
}

// DeviceReader reads the devices compliance evaluates.
type DeviceReader interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
}

// ProfileStore keeps the profile documents and which group follows which.
type ProfileStore interface {
	ListProfileDocs(ctx context.Context) ([]store.ProfileDoc, error)
	SaveProfileDoc(ctx context.Context, p *store.ProfileDoc) error
	EnsureProfile(ctx context.Context, p *store.ProfileDoc) error
	GroupProfile(ctx context.Context, group string) (string, error)
}

// FindingStore keeps a device's findings and the state recorded from them.
type FindingStore interface {
	OpenFindings(ctx context.Context, deviceID string) ([]store.Finding, error)
	AllOpenFindings(ctx context.Context) ([]store.Finding, error)
	SaveFindings(ctx context.Context, upsert []store.Finding, resolve []uint64, at time.Time) error
	SetFindingAction(ctx context.Context, id uint64, action string) error
	// MarkEvaluated records an evaluation and the fingerprint of the
	// report it was made from; EvaluatedFingerprint reads it back, and
	// ForgetEvaluations clears it (of every device when no id is given).
	MarkEvaluated(ctx context.Context, deviceID string, at time.Time, fingerprint string) error
	EvaluatedFingerprint(ctx context.Context, deviceID string) (string, error)
	ForgetEvaluations(ctx context.Context, ids ...string) error
	SetComplianceState(ctx context.Context, deviceID, state string) error
	// DueFindingDevices is the sweep's candidates: devices not recorded
	// in state except with an open finding past its deadline at now.
	DueFindingDevices(ctx context.Context, except string, now time.Time) ([]string, error)
}

// Transactor runs a change and its audit entry in one transaction (AU-5).
type Transactor interface {
	InTx(ctx context.Context, fn func(tx *store.Store) error) error
}

// Batcher commits writes of many callers in one transaction (a
// store.Writer): what compliance records on a device's report.
type Batcher interface {
	Commit(ctx context.Context, fn func(tx *store.Store) error) error
}

// WithBatcher records state changes through b instead of a transaction
// each.
func WithBatcher(b Batcher) Option { return func(s *Service) { s.batcher = b } }

// commit runs fn through the batcher, or in a transaction of its own.
func (s *Service) commit(ctx context.Context, fn func(tx *store.Store) error) error {
	if s.batcher != nil {
		return s.batcher.Commit(ctx, fn)
	}
	return s.store.InTx(ctx, fn)
}

// Auditor records security events.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
	RecordTx(ctx context.Context, tx audit.Appender, e audit.Entry) error
}

// Blocker blocks a Bluetooth peer on a device (the command queue).
type Blocker interface {
	BluetoothBlock(ctx context.Context, deviceID, address, reason string) (string, error)
}

// Notifier tells the parties of a Bluetooth request about each step.
type Notifier interface {
	NotifyBluetooth(ctx context.Context, r *store.BluetoothRequest, step string)
}

// WithNotifier sets who tells the parties of Bluetooth requests.
func WithNotifier(n Notifier) Option { return func(s *Service) { s.notifier = n } }

// Service evaluates posture and answers access decisions.
type Service struct {
	store    Store
	audit    Auditor
	blocker  Blocker
	notifier Notifier
	batcher  Batcher
	now      func() time.Time
	log      *slog.Logger
	changed  func(deviceID string)

	mu       sync.RWMutex
	profiles map[string]*profiles.Profile

	// locks serialise the evaluation and state recording of one device
	// (a report and the sweep must not interleave); striped, not per
	// device, so memory does not grow with the fleet.
	locks keylock.Striped
	// swept: the sweep has read every device once (at start), so from
	// then on it reads only the devices whose deadlines fell due.
	swept atomic.Bool
}

func (s *Service) lock(deviceID string) func() { return s.locks.Lock(deviceID) }

// Option configures a Service.
type Option func(*Service)

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithBlocker lets enforcement block Bluetooth peers.
func WithBlocker(b Blocker) Option { return func(s *Service) { s.blocker = b } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithDeviceChanged is called when a device's state changes, so its agent
// can be told.
func WithDeviceChanged(f func(deviceID string)) Option { return func(s *Service) { s.changed = f } }

// New returns a Service; call Init before use.
func New(st Store, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, now: time.Now, log: slog.New(slog.DiscardHandler), profiles: map[string]*profiles.Profile{}}
	for _, o := range opts {
		o(s)
	}
	return s
}
