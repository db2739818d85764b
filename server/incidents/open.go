package incidents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

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
	s.filed(inc)
	s.playbook(ctx, inc)
	if s.notify != nil {
		s.notify.Notify(ctx, inc, "new incident")
	}
	return inc, nil
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
