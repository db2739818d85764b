package incidents

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// ActionFormUpdated is the audit action of an edit of the LASO's part of
// the response form.
const ActionFormUpdated = "incident.form_updated"

// Limits on the LASO's form text (README, "Limits on input").
const (
	MaxCause      = 4096
	MaxActionPlan = 8192
)

// Answers the form's choice fields take.
var (
	Compromised = []string{"yes", "no", "unknown"}
	Reimages    = []string{"required", "done", "not_required"}
)

// FormUpdate sets the LASO's fields of the response form; nil leaves a
// field as it is.
type FormUpdate struct {
	Cause          *string    `json:"suspected_cause,omitempty"`
	CJICompromised *string    `json:"cji_compromised,omitempty"`
	PIICompromised *string    `json:"pii_compromised,omitempty"`
	ActionPlan     *string    `json:"action_plan,omitempty"`
	Reimage        *string    `json:"reimage_before_reconnect,omitempty"`
	FBICopySentAt  *time.Time `json:"copies_to_fbi_cjis_iso_at,omitempty"`
	Actor          string     `json:"-"`
	Source         string     `json:"-"`
}

// FormStore reads the LASO's part of the form (written by
// store.SaveIncidentForm within the edit's transaction).
type FormStore interface {
	GetIncidentForm(ctx context.Context, incidentID string) (*store.IncidentForm, error)
}

// UpdateForm applies the LASO's edit and audits it with the fields that
// changed. An edit that sets nothing is refused (ErrInvalid).
func (s *Service) UpdateForm(ctx context.Context, id string, u FormUpdate) (*store.IncidentForm, error) {
	choice := func(name string, v *string, allowed []string) error {
		if v == nil || *v == "" || slices.Contains(allowed, *v) {
			return nil
		}
		return input.Errorf(name, "must be one of %s", strings.Join(allowed, ", "))
	}
	text := func(name string, v *string, max int) error {
		if v == nil {
			return nil
		}
		return input.FreeText(name, *v, max)
	}
	if err := input.First(text("suspected_cause", u.Cause, MaxCause), text("action_plan", u.ActionPlan, MaxActionPlan),
		choice("cji_compromised", u.CJICompromised, Compromised), choice("pii_compromised", u.PIICompromised, Compromised),
		choice("reimage_before_reconnect", u.Reimage, Reimages)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	inc, err := s.store.GetIncident(ctx, id)
	if err != nil {
		return nil, err
	}
	f, err := s.store.GetIncidentForm(ctx, inc.ID)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	changed := map[string]string{}
	set := func(name string, dst *string, v *string) {
		if v != nil && *v != *dst {
			*dst = *v
			changed[name] = *v
		}
	}
	set("suspected_cause", &f.Cause, u.Cause)
	set("cji_compromised", &f.CJICompromised, u.CJICompromised)
	set("pii_compromised", &f.PIICompromised, u.PIICompromised)
	set("action_plan", &f.ActionPlan, u.ActionPlan)
	set("reimage_before_reconnect", &f.Reimage, u.Reimage)
	// The first record of copies to the FBI CJIS ISO is an escalation
	// (counted once committed); a corrected time is not another.
	toFBI := f.FBICopySentAt == nil && u.FBICopySentAt != nil
	if t := u.FBICopySentAt; t != nil {
		at := t.UTC().Truncate(time.Microsecond)
		if at.Before(inc.StartedAt) || at.After(now.Add(protocol.MaxClockSkew)) {
			return nil, fmt.Errorf("%w: copies_to_fbi_cjis_iso_at must be between the start of the incident and now", ErrInvalid)
		}
		if f.FBICopySentAt == nil || !f.FBICopySentAt.Equal(at) {
			f.FBICopySentAt = &at
			changed["copies_to_fbi_cjis_iso_at"] = at.Format(JSONTime)
		}
	}
	if len(changed) == 0 {
		return nil, fmt.Errorf("%w: nothing to change on the form", ErrInvalid)
	}
	f.UpdatedAt, f.UpdatedBy = now, u.Actor
	names := make([]string, 0, len(changed))
	for k := range changed {
		names = append(names, k)
	}
	sort.Strings(names)
	ev := store.IncidentEvent{At: now, Actor: u.Actor, Action: "form_updated", Detail: strings.Join(names, ", ")}
	extra := map[string]string{"fields": strings.Join(names, ",")}
	for k, v := range changed {
		extra["field."+k] = v
	}
	// The edit and its audit entry commit together, or neither (AU-5).
	if err := s.store.InTx(ctx, func(tx *store.Store) error {
		if err := tx.SaveIncidentForm(ctx, f, ev); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, u.Actor, u.Source, ActionFormUpdated, inc, extra)
	}); err != nil {
		return nil, err
	}
	if toFBI {
		s.metrics.escalations.WithLabelValues(EscalatedFBI).Inc()
	}
	return f, nil
}

// FormReader is what filling the form reads.
type FormReader interface {
	GetIncident(ctx context.Context, id string) (*store.Incident, error)
	GetDevice(ctx context.Context, id string) (*store.Device, error)
	IncidentTimeline(ctx context.Context, id string) ([]store.IncidentEvent, error)
	PostureNear(ctx context.Context, deviceID string, at time.Time) (*store.PostureReport, error)
	LockTimeline(ctx context.Context, deviceID string) ([]store.LockEvent, error)
	DevicesOwnedBy(ctx context.Context, owner string) ([]store.Device, error)
	GetIncidentForm(ctx context.Context, incidentID string) (*store.IncidentForm, error)
}

// LoadForm reads what the form of incident id is filled from and fills
// it; now ends the window of an ongoing incident.
func LoadForm(ctx context.Context, r FormReader, id string, now time.Time) (*store.Incident, Form, error) {
	inc, err := r.GetIncident(ctx, id)
	if err != nil {
		return nil, Form{}, err
	}
	d := FormData{Incident: inc, Now: now.UTC()}
	d.Device, _ = r.GetDevice(ctx, inc.DeviceID) // a form outlives its device
	if d.Timeline, err = r.IncidentTimeline(ctx, inc.ID); err != nil {
		return nil, Form{}, err
	}
	if d.Posture, err = r.PostureNear(ctx, inc.DeviceID, inc.StartedAt); err != nil {
		return nil, Form{}, err
	}
	if d.Locks, err = r.LockTimeline(ctx, inc.DeviceID); err != nil {
		return nil, Form{}, err
	}
	if d.Device != nil {
		if d.Owned, err = r.DevicesOwnedBy(ctx, d.Device.Owner); err != nil {
			return nil, Form{}, err
		}
	}
	if d.LASO, err = r.GetIncidentForm(ctx, inc.ID); err != nil {
		return nil, Form{}, err
	}
	return inc, BuildForm(d), nil
}
