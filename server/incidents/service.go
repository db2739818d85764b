package incidents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// Statuses, in the order an incident moves through them.
var Statuses = []string{"reported", "triaged", "contained", "resolved", "closed"}

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

// Store is what the service keeps incidents in.
type Store interface {
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	ListDevices(ctx context.Context) ([]store.Device, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	SaveIncident(ctx context.Context, inc *store.Incident, events ...store.IncidentEvent) error
	GetIncident(ctx context.Context, id string) (*store.Incident, error)
	DueEscalations(ctx context.Context, now time.Time) ([]store.Incident, error)
	OpenIncidentFor(ctx context.Context, deviceID string) (bool, error)
	IncidentByRef(ctx context.Context, ref string) (*store.Incident, error)
	SetQuarantine(ctx context.Context, deviceID, incidentID, from string, at time.Time) (bool, error)
	// InTx runs a change and its audit entry in one transaction (AU-5).
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
	ErrTransition = errors.New("status can only move forward: reported, triaged, contained, resolved, closed")
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
		log: slog.New(slog.DiscardHandler), detectSilent: true, playbookRules: DefaultPlaybook}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Report is a report of an incident.
type Report struct {
	DeviceID    string
	Kind        string
	LockState   string
	StartedAt   time.Time
	EndedAt     *time.Time
	Location    string
	Latitude    *float64
	Longitude   *float64
	OutsideUS   bool
	Description string
	// Who reports, and from where.
	Actor, Source string
	// Reporter is the person, when Actor is a device acting for a local
	// user; empty means Actor.
	Reporter string
	// Ref makes a report idempotent: an agent resending a report whose
	// ack was lost gets the incident the first copy opened.
	Ref string
	// ClockAhead is how far at least the reporting device's clock ran
	// ahead of the server's when it sent the report (the frame's own
	// time against its receipt). Its times are then moved back by it and
	// the incident records that they were: a lost device's report must
	// not be refused for its clock, nor be filed at times that never were.
	ClockAhead time.Duration
}

// Open records a reported incident.
func (s *Service) Open(ctx context.Context, r Report) (*store.Incident, error) {
	if r.Ref != "" {
		inc, err := s.store.IncidentByRef(ctx, r.Ref)
		if err == nil {
			return inc, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	return s.open(ctx, r, "reported")
}

func (s *Service) open(ctx context.Context, r Report, detection string) (*store.Incident, error) {
	switch r.Kind {
	case KindLossOfControl, KindTotalLoss, KindCompromise:
	default:
		return nil, fmt.Errorf("%w: kind must be loss_of_control, total_loss or compromise", ErrInvalid)
	}
	switch r.LockState {
	case "", LockLocked, LockUnlocked, LockUnknown:
	default:
		return nil, fmt.Errorf("%w: lock_state must be locked, unlocked or unknown", ErrInvalid)
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var corrected *store.IncidentEvent
	if r.ClockAhead > 0 {
		said := timefmt.Human(r.StartedAt)
		r.StartedAt = r.StartedAt.Add(-r.ClockAhead)
		if r.EndedAt != nil {
			said += ", ended_at " + timefmt.Human(*r.EndedAt)
			e := r.EndedAt.Add(-r.ClockAhead)
			r.EndedAt = &e
		}
		corrected = &store.IncidentEvent{At: now, Actor: "server", Action: "clock_corrected", Detail: fmt.Sprintf(
			"the reporting device's clock was %v ahead of the server's; its times were moved back by that (it said started_at %s)",
			r.ClockAhead.Round(time.Second), said)}
	}
	// A time ahead of the server's clock by more than the skew the clock
	// rule allows is not a fact: an ended_at in 9999 would file an
	// "extended" incident and quarantine the device.
	latest := now.Add(protocol.MaxClockSkew)
	if r.StartedAt.IsZero() || r.StartedAt.After(latest) {
		return nil, fmt.Errorf("%w: started_at is required and may not be later than now + %v", ErrInvalid, protocol.MaxClockSkew)
	}
	if r.EndedAt != nil && r.EndedAt.Before(r.StartedAt) {
		return nil, fmt.Errorf("%w: ended_at is before started_at", ErrInvalid)
	}
	if r.EndedAt != nil && r.EndedAt.After(latest) {
		return nil, fmt.Errorf("%w: ended_at may not be later than now + %v", ErrInvalid, protocol.MaxClockSkew)
	}
	if err := input.First(input.Text("device_id", r.DeviceID, MaxID), input.Text("location", r.Location, MaxLocation),
		input.FreeText("description", r.Description, protocol.MaxDescription),
		input.Latitude("latitude", r.Latitude), input.Longitude("longitude", r.Longitude)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	dev, err := s.store.GetDevice(ctx, r.DeviceID)
	if err != nil {
		return nil, err
	}
	if r.LockState == "" {
		r.LockState = LockUnknown
	}
	reporter := r.Reporter
	if reporter == "" {
		reporter = r.Actor
	}
	inc := &store.Incident{ID: uuid.NewString(), DeviceID: dev.ID, Reporter: reporter, Detection: detection, Kind: r.Kind,
		StartedAt: r.StartedAt.UTC().Truncate(time.Microsecond), Location: r.Location, Latitude: r.Latitude, Longitude: r.Longitude,
		OutsideUS: r.OutsideUS, Description: r.Description, LockReported: r.LockState, Status: Statuses[0], CreatedAt: now, UpdatedAt: now}
	if r.EndedAt != nil {
		e := r.EndedAt.UTC().Truncate(time.Microsecond)
		inc.EndedAt = &e
	}
	if r.Ref != "" {
		inc.ReportRef = &r.Ref
	}
	if inc.LockObserved, err = s.observed(ctx, inc); err != nil {
		return nil, err
	}
	s.classify(inc, now)
	events := []store.IncidentEvent{{At: now, Actor: r.Actor, Action: detection, Detail: summary(inc)}}
	if corrected != nil {
		events = append(events, *corrected)
	}
	if inc.Contradiction != "" {
		events = append(events, store.IncidentEvent{At: now, Actor: "server", Action: "contradiction", Detail: inc.Contradiction})
	}
	action := ActionReported
	if detection != "reported" {
		action = ActionDetected
	}
	// The incident and its entry commit together, or it is refused (AU-5).
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveIncident(ctx, inc, events...); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, r.Actor, r.Source, action, inc, nil)
	}); err != nil {
		return nil, err
	}
	s.playbook(ctx, inc)
	if s.notify != nil {
		s.notify.Notify(ctx, inc, "new incident")
	}
	return inc, nil
}

// playbook takes the actions the agency's playbook names for the
// incident's category (DefaultPlaybook unless configured): a remote lock
// while the loss is ongoing, quarantine, a wipe recommendation. Cordon
// never wipes by itself. Each action goes on the timeline and is taken
// once per incident, so an escalation adds only what is new.
func (s *Service) playbook(ctx context.Context, inc *store.Incident) {
	now := s.now().UTC().Truncate(time.Microsecond)
	acts := s.playbookRules.Actions(inc.Category, inc.DurationClass, inc.OutsideUS)
	var events []store.IncidentEvent
	if acts[ActLock] && s.locker != nil && inc.EndedAt == nil && inc.LockCommand == "" {
		id, err := s.locker.Lock(ctx, inc.DeviceID, "incident "+inc.ID)
		if err != nil {
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "lock", Detail: "remote lock could not be queued: " + err.Error()})
		} else {
			inc.LockCommand = id
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "lock", Detail: "remote lock queued as command " + id})
		}
	}
	quarantined := false
	if acts[ActQuarantine] && !inc.Quarantined {
		if err := s.store.InTx(ctx, func(tx *store.Store) error {
			if _, err := tx.SetQuarantine(ctx, inc.DeviceID, inc.ID, "", now); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, "playbook", "local", ActionQuarantined, inc, nil)
		}); err != nil {
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "quarantine", Detail: "quarantine failed: " + err.Error()})
		} else {
			inc.Quarantined, quarantined = true, true
			events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "quarantine",
				Detail: "device quarantined: CJI access is refused until the incident is resolved"})
		}
	}
	if acts[ActRecommendWipe] && !inc.WipeRecommended {
		inc.WipeRecommended = true
		events = append(events, store.IncidentEvent{At: now, Actor: "playbook", Action: "wipe_recommended",
			Detail: "a remote wipe is recommended to the LASO; Cordon does not wipe by itself"})
	}
	if len(events) == 0 {
		return
	}
	if err := s.store.SaveIncident(ctx, inc, events...); err != nil {
		s.log.Error("playbook", "incident", inc.ID, "err", err)
	}
	if quarantined {
		s.deviceChanged(inc.DeviceID)
	}
}

func (s *Service) deviceChanged(id string) {
	if s.changed != nil {
		s.changed(id)
	}
}

// observed is the worst lock state the device's own timeline shows over
// the loss: the state it was in when the loss began and every change
// until it ended (or until now).
func (s *Service) observed(ctx context.Context, inc *store.Incident) (string, error) {
	tl, err := s.store.LockTimeline(ctx, inc.DeviceID)
	if err != nil {
		return "", err
	}
	end := s.now().UTC()
	if inc.EndedAt != nil {
		end = *inc.EndedAt
	}
	worst, seen := "", false
	for _, e := range tl {
		if e.At.After(end) {
			break
		}
		if e.At.Before(inc.StartedAt) {
			worst, seen = e.State, true // the state the loss began in
			continue
		}
		if !seen || lockRank(normalLock(e.State)) > lockRank(normalLock(worst)) {
			worst, seen = e.State, true
		}
	}
	return worst, nil
}

// classify fills the derived fields and the durable escalation time.
func (s *Service) classify(inc *store.Incident, now time.Time) {
	c := Classify(Facts{Kind: inc.Kind, Started: inc.StartedAt, Ended: inc.EndedAt, Now: now,
		LockReported: inc.LockReported, LockObserved: inc.LockObserved, OutsideUS: inc.OutsideUS}, s.settings)
	inc.LockState, inc.Contradiction, inc.Category, inc.DurationClass, inc.Severity =
		c.LockState, c.Contradiction, c.Category, c.DurationClass, c.Severity
	inc.EscalateAt = nil
	if inc.EndedAt == nil && c.DurationClass == Minimal {
		at := inc.StartedAt.Add(s.settings.Line)
		inc.EscalateAt = &at
	}
}

// Escalate moves every ongoing incident that has reached the line to
// extended. The server runs it at start-up and then every few seconds, so
// an escalation due while it was down fires as soon as it is back.
func (s *Service) Escalate(ctx context.Context) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	due, err := s.store.DueEscalations(ctx, now)
	if err != nil {
		return err
	}
	for i := range due {
		inc := &due[i]
		was := inc.Category
		s.classify(inc, now)
		inc.UpdatedAt = now
		late := now.Sub(inc.StartedAt.Add(s.settings.Line)).Round(time.Second)
		detail := fmt.Sprintf("ongoing for %s: %s → %s, severity %s", now.Sub(inc.StartedAt).Round(time.Second), was, inc.Category, inc.Severity)
		if late > 30*time.Second { // beyond the sweep interval
			detail += fmt.Sprintf(" (escalated %s late: the server was not running at 15:00)", late)
		}
		// Not saved without its entry: the next sweep escalates it.
		if err := s.store.InTx(ctx, func(tx *store.Store) error {
			if err := tx.SaveIncident(ctx, inc, store.IncidentEvent{At: now, Actor: "server", Action: "escalated", Detail: detail}); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, "server", "local", ActionEscalated, inc, map[string]string{"detail": detail})
		}); err != nil {
			return err
		}
		s.playbook(ctx, inc)
		if s.notify != nil {
			s.notify.Notify(ctx, inc, "escalated to extended")
		}
	}
	return nil
}

// Update is a LASO's change to an incident.
type Update struct {
	Status      string
	EndedAt     *time.Time
	Disposition string
	Actor       string
	Source      string
}

// Limits on incident text (README, "Limits on input"); the description's
// is protocol.MaxDescription, shared with the agent channel.
const (
	MaxID          = 64
	MaxLocation    = 1024
	MaxDisposition = 4096
)

// Update ends an incident, moves its status forward or records the
// disposition; every change is a timeline event and an audit entry.
func (s *Service) Update(ctx context.Context, id string, u Update) (*store.Incident, error) {
	if err := input.First(input.Text("status", u.Status, 32), input.FreeText("disposition", u.Disposition, MaxDisposition)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	inc, err := s.store.GetIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	var events []store.IncidentEvent
	lift := false
	if u.EndedAt != nil {
		if inc.EndedAt != nil {
			return nil, fmt.Errorf("%w: the incident has already ended", ErrInvalid)
		}
		e := u.EndedAt.UTC().Truncate(time.Microsecond)
		if e.Before(inc.StartedAt) || e.After(now.Add(protocol.MaxClockSkew)) {
			return nil, fmt.Errorf("%w: ended_at must be between started_at and now (+ %v)", ErrInvalid, protocol.MaxClockSkew)
		}
		inc.EndedAt = &e
		if inc.LockObserved, err = s.observed(ctx, inc); err != nil {
			return nil, err
		}
		s.classify(inc, now)
		events = append(events, store.IncidentEvent{At: now, Actor: u.Actor, Action: "ended", Detail: summary(inc)})
	}
	if u.Status != "" && u.Status != inc.Status {
		from, to := slices.Index(Statuses, inc.Status), slices.Index(Statuses, u.Status)
		if to < 0 || to < from {
			return nil, ErrTransition
		}
		if (u.Status == "resolved" || u.Status == "closed") && inc.EndedAt == nil {
			return nil, fmt.Errorf("%w: end the incident (ended_at) before resolving it", ErrInvalid)
		}
		events = append(events, store.IncidentEvent{At: now, Actor: u.Actor, Action: "status", Detail: inc.Status + " → " + u.Status})
		inc.Status = u.Status
		if inc.Quarantined && (u.Status == "resolved" || u.Status == "closed") {
			inc.Quarantined, lift = false, true
			events = append(events, store.IncidentEvent{At: now, Actor: u.Actor, Action: "quarantine_lifted",
				Detail: "the incident is " + u.Status + "; the device's quarantine is lifted"})
		}
	}
	if u.Disposition != "" {
		inc.Disposition = u.Disposition
		events = append(events, store.IncidentEvent{At: now, Actor: u.Actor, Action: "disposition", Detail: u.Disposition})
	}
	if len(events) == 0 {
		return nil, fmt.Errorf("%w: nothing to change", ErrInvalid)
	}
	inc.UpdatedAt = now
	changes, _ := json.Marshal(u)
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveIncident(ctx, inc, events...); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, u.Actor, u.Source, ActionUpdated, inc, map[string]string{"change": string(changes)})
	}); err != nil {
		return nil, err
	}
	// Lifted only after the incident says so: a failure here leaves the
	// device quarantined, the safe side.
	if lift {
		if err := s.store.InTx(ctx, func(tx *store.Store) error {
			if _, err := tx.SetQuarantine(ctx, inc.DeviceID, "", inc.ID, now); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, u.Actor, u.Source, ActionQuarantineLifted, inc, nil)
		}); err != nil {
			return nil, fmt.Errorf("lift quarantine: %w", err)
		}
		s.deviceChanged(inc.DeviceID)
	}
	return inc, nil
}

// DetectSilentUnlocked opens a loss-of-control incident for every device
// whose last report said unlocked and that has been silent for the
// line: an unattended unlocked laptop must not wait for someone to notice.
func (s *Service) DetectSilentUnlocked(ctx context.Context) error {
	if !s.detectSilent {
		return nil
	}
	now := s.now().UTC()
	devs, err := s.store.ListDevices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.Status != "active" || d.Online || d.LastSeen == nil || now.Sub(*d.LastSeen) < s.settings.Line {
			continue
		}
		tl, err := s.store.LockTimeline(ctx, d.ID)
		if err != nil || stateAt(tl, now) != LockUnlocked {
			continue
		}
		if open, err := s.store.OpenIncidentFor(ctx, d.ID); err != nil || open {
			continue
		}
		_, err = s.open(ctx, Report{DeviceID: d.ID, Kind: KindLossOfControl, LockState: LockUnlocked, StartedAt: *d.LastSeen,
			Description: fmt.Sprintf("server-detected: the device's last report said unlocked and it has been silent since %s",
				timefmt.Human(*d.LastSeen)), Actor: "server", Source: "local"}, "telemetry")
		if err != nil {
			s.log.Error("server-detected incident", "device_id", d.ID, "err", err)
		}
	}
	return nil
}

// stateAt is the lock state the timeline (oldest first, at the server's
// trusted times) shows at t. Entries after t are skipped rather than
// taken as the last word: the timeline holds no future entries since
// times are checked, but one written before that must not decide.
func stateAt(tl []store.LockEvent, t time.Time) string {
	for i := len(tl) - 1; i >= 0; i-- {
		if !tl[i].At.After(t) {
			return tl[i].State
		}
	}
	return ""
}

func summary(inc *store.Incident) string {
	return fmt.Sprintf("%s, lock %s (reported %s, observed %s), %s, %s, severity %s",
		inc.Kind, inc.LockState, inc.LockReported, orNone(inc.LockObserved), inc.DurationClass, inc.Category, inc.Severity)
}

func orNone(s string) string {
	if s == "" {
		return "no telemetry"
	}
	return s
}

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
