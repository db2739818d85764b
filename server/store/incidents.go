package store

import (
	"context"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Incident is a loss-of-control, total loss or compromise of a device.
type Incident struct {
	ID            string `gorm:"primaryKey;size:36"`
	DeviceID      string `gorm:"size:36;index"`
	Reporter      string `gorm:"size:256"`
	Detection     string `gorm:"size:32"` // "reported" or "telemetry"
	Kind          string `gorm:"size:32"`
	StartedAt     time.Time
	EndedAt       *time.Time
	Location      string `gorm:"size:1024"`
	Latitude      *float64
	Longitude     *float64
	OutsideUS     bool
	Description   string
	LockReported  string `gorm:"size:16"`
	LockObserved  string `gorm:"size:16"`
	LockState     string `gorm:"size:16"`
	Contradiction string `gorm:"size:512"`
	Category      string `gorm:"size:32"`
	DurationClass string `gorm:"size:16"`
	Severity      string `gorm:"size:16"`
	Status        string `gorm:"size:16;index"`
	Disposition   string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	// LockCommand is the remote lock the playbook queued, if any.
	LockCommand string `gorm:"size:36"`
	// WipeRecommended puts a wipe in the LASO's queue; Cordon never wipes
	// by itself.
	WipeRecommended bool
	// EscalateAt is when an ongoing minimal incident becomes extended. It
	// is a row, not a timer, so a restart cannot lose it.
	EscalateAt *time.Time `gorm:"index"`
	// ReportRef is "<device id>/<frame id>" for a report that came over
	// an agent's channel, so a report resent after a lost ack opens one
	// incident. Nil for API reports (NULLs do not collide).
	ReportRef *string `gorm:"size:128;uniqueIndex"`
	// Quarantined says the playbook quarantined the device for this
	// incident; resolving the incident lifts it.
	Quarantined bool
}

// IncidentEvent is one line of an incident's timeline.
type IncidentEvent struct {
	ID         uint64 `gorm:"primaryKey;autoIncrement"`
	IncidentID string `gorm:"size:36;index"`
	At         time.Time
	Actor      string `gorm:"size:256"`
	Action     string `gorm:"size:64"`
	Detail     string
}

// SaveIncident creates or updates an incident and appends events to its
// timeline in one transaction.
func (s *Store) SaveIncident(ctx context.Context, inc *Incident, events ...IncidentEvent) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(inc).Error; err != nil {
			return err
		}
		for i := range events {
			events[i].IncidentID = inc.ID
			if err := tx.Create(&events[i]).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// AppendIncidentEvents adds events to an existing incident's timeline
// and changes nothing else: a device's answer (an Apple lost-mode
// result) must not write back an incident it read before a LASO's
// change committed. ErrNotFound when there is no such incident.
func (s *Store) AppendIncidentEvents(ctx context.Context, incidentID string, events ...IncidentEvent) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Incident{}).Where("id = ?", incidentID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		for i := range events {
			events[i].ID, events[i].IncidentID = 0, incidentID
			if err := tx.Create(&events[i]).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// GetIncident returns one incident.
func (s *Store) GetIncident(ctx context.Context, id string) (*Incident, error) {
	var inc Incident
	if err := s.with(ctx).First(&inc, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &inc, nil
}

// ListIncidents returns incidents, newest first.
func (s *Store) ListIncidents(ctx context.Context) ([]Incident, error) {
	var is []Incident
	err := s.with(ctx).Order("created_at DESC, id").Find(&is).Error
	return is, err
}

// IncidentTimeline returns an incident's events, oldest first.
func (s *Store) IncidentTimeline(ctx context.Context, id string) ([]IncidentEvent, error) {
	var es []IncidentEvent
	err := s.with(ctx).Where("incident_id = ?", id).Order("at, id").Find(&es).Error
	return es, err
}

// DueEscalations returns ongoing incidents whose escalation time has come.
func (s *Store) DueEscalations(ctx context.Context, now time.Time) ([]Incident, error) {
	var is []Incident
	err := s.with(ctx).Where("escalate_at IS NOT NULL AND escalate_at <= ? AND ended_at IS NULL", now).Find(&is).Error
	return is, err
}

// ClosedIncidentStatuses are the statuses of an incident that is over:
// the one answer to "is this incident open" that the store's query, the
// incident service's rules and the console's lists all take (here, since
// the store cannot import server/incidents, which orders the statuses).
var ClosedIncidentStatuses = []string{"resolved", "closed"}

// IncidentStatusClosed says whether an incident in status is over.
func IncidentStatusClosed(status string) bool { return slices.Contains(ClosedIncidentStatuses, status) }

// Open says whether the incident is not yet resolved or closed.
func (i *Incident) Open() bool { return !IncidentStatusClosed(i.Status) }

// OpenIncidentFor reports whether the device has an incident not yet
// resolved or closed.
func (s *Store) OpenIncidentFor(ctx context.Context, deviceID string) (bool, error) {
	var n int64
	err := s.with(ctx).Model(&Incident{}).Where("device_id = ? AND status NOT IN ?", deviceID, ClosedIncidentStatuses).Count(&n).Error
	return n > 0, err
}

// IncidentByRef returns the incident an agent's report opened.
func (s *Store) IncidentByRef(ctx context.Context, ref string) (*Incident, error) {
	var inc Incident
	if err := s.with(ctx).First(&inc, "report_ref = ?", ref).Error; err != nil {
		return nil, notFound(err)
	}
	return &inc, nil
}

// SetQuarantine quarantines the device on behalf of an incident, or, with
// an empty incidentID, lifts the quarantine that incident "from" put in
// place (a later incident's quarantine is left alone). It reports whether
// anything changed.
func (s *Store) SetQuarantine(ctx context.Context, deviceID, incidentID, from string, at time.Time) (bool, error) {
	q := s.with(ctx).Model(&Device{}).Where("id = ?", deviceID)
	var res *gorm.DB
	if incidentID != "" {
		res = q.Updates(map[string]any{"quarantined_at": at, "quarantine_incident": incidentID})
	} else {
		res = q.Where("quarantine_incident = ?", from).Updates(map[string]any{"quarantined_at": nil, "quarantine_incident": ""})
	}
	return res.RowsAffected > 0, res.Error
}

// DevicesOwnedBy lists the active devices enrolled for owner.
func (s *Store) DevicesOwnedBy(ctx context.Context, owner string) ([]Device, error) {
	var ds []Device
	if owner == "" {
		return nil, nil
	}
	err := s.with(ctx).Where("owner = ? AND status = ?", owner, StatusActive).Order("name, id").Find(&ds).Error
	return ds, err
}

// IncidentForm holds what the LASO fills in on an incident's response
// form (the agency plan's checklist); what Cordon knows is computed from
// its data each time the form is shown and is not stored here.
type IncidentForm struct {
	IncidentID string `gorm:"primaryKey;size:36"`
	// Cause is the suspected cause.
	Cause string
	// CJICompromised and PIICompromised are "yes", "no", "unknown" or ""
	// (not yet answered).
	CJICompromised string `gorm:"size:16"`
	PIICompromised string `gorm:"size:16"`
	ActionPlan     string
	// Reimage is the plan for re-imaging before the device reconnects:
	// "required", "done", "not_required" or "".
	Reimage string `gorm:"size:16"`
	// FBICopySentAt is when copies went to the FBI CJIS ISO; nil: not yet.
	FBICopySentAt *time.Time
	UpdatedAt     time.Time
	UpdatedBy     string `gorm:"size:256"`
}

// GetIncidentForm returns the LASO's part of the form; an incident whose
// form nobody has edited yet has an empty one (and no error).
func (s *Store) GetIncidentForm(ctx context.Context, incidentID string) (*IncidentForm, error) {
	var f IncidentForm
	err := s.with(ctx).Where("incident_id = ?", incidentID).Limit(1).Find(&f).Error
	if err != nil {
		return nil, err
	}
	f.IncidentID = incidentID
	return &f, nil
}

// SaveIncidentForm stores the LASO's part of the form and appends events
// to the incident's timeline in one transaction.
func (s *Store) SaveIncidentForm(ctx context.Context, f *IncidentForm, events ...IncidentEvent) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Save(f).Error; err != nil {
			return err
		}
		for i := range events {
			events[i].IncidentID = f.IncidentID
			if err := tx.Create(&events[i]).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

// PostureNear returns the device's stored report whose trusted time is
// nearest to at (before or after), or nil when it has none.
func (s *Store) PostureNear(ctx context.Context, deviceID string, at time.Time) (*PostureReport, error) {
	var before, after PostureReport
	if err := s.with(ctx).Where("device_id = ? AND trusted_at <= ?", deviceID, at).Order("trusted_at DESC, id DESC").Limit(1).Find(&before).Error; err != nil {
		return nil, err
	}
	if err := s.with(ctx).Where("device_id = ? AND trusted_at > ?", deviceID, at).Order("trusted_at, id").Limit(1).Find(&after).Error; err != nil {
		return nil, err
	}
	switch {
	case before.ID == 0 && after.ID == 0:
		return nil, nil
	case before.ID == 0:
		return &after, nil
	case after.ID == 0:
		return &before, nil
	case at.Sub(before.TrustedAt) <= after.TrustedAt.Sub(at):
		return &before, nil
	}
	return &after, nil
}

// ClaimEscalation says whether the incident is still due to escalate at
// now, and, in the caller's transaction, holds its row until that
// commits: of two processes that read the same due incident, the second
// waits for the first, then finds it escalated (escalate_at moved) and
// gets false, so the escalation happens once.
func (s *Store) ClaimEscalation(ctx context.Context, id string, now time.Time) (bool, error) {
	res := s.with(ctx).Model(&Incident{}).
		Where("id = ? AND escalate_at IS NOT NULL AND escalate_at <= ? AND ended_at IS NULL", id, now).
		Update("updated_at", now)
	return res.RowsAffected == 1, res.Error
}

// SilentDevices returns the active devices offline and unheard of since
// cutoff or before whose lock state in force at now (the newest lock
// event not after now) is lockState and that have no open incident, most
// recently enrolled first: what the silent-while-unlocked sweep looks at,
// found through the (online, last_seen) index and one index seek per
// such device instead of a read of every device and its timeline. The
// posture body is left out.
func (s *Store) SilentDevices(ctx context.Context, lockState string, cutoff, now time.Time) ([]Device, error) {
	var ds []Device
	err := s.with(ctx).Omit("posture").
		Where("online = ? AND last_seen <= ? AND status = ?", false, cutoff, StatusActive).
		Where(`(SELECT state FROM lock_events WHERE lock_events.device_id = devices.id AND lock_events.at <= ?
			ORDER BY lock_events.at DESC, lock_events.id DESC LIMIT 1) = ?`, now, lockState).
		Where("NOT EXISTS (SELECT 1 FROM incidents WHERE incidents.device_id = devices.id AND incidents.status NOT IN ?)", ClosedIncidentStatuses).
		Order("enrolled_at DESC, id").Find(&ds).Error
	return ds, err
}
