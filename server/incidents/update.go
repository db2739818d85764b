package incidents

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Update is a LASO's change to an incident.
type Update struct {
	Status      string
	EndedAt     *time.Time
	Disposition string
	Actor       string
	Source      string
}

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
	lift, closing := false, false
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
		closing = store.IncidentStatusClosed(u.Status)
		if closing && inc.EndedAt == nil {
			return nil, fmt.Errorf("%w: end the incident (ended_at) before resolving it", ErrInvalid)
		}
		events = append(events, store.IncidentEvent{At: now, Actor: u.Actor, Action: "status", Detail: inc.Status + " → " + u.Status})
		inc.Status = u.Status
		if inc.Quarantined && closing {
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
	if closing {
		s.resolvedLostMode(ctx, inc, u.Actor, u.Source)
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
