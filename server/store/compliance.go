package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Finding is one failing or unknown control on one device. Open while
// ResolvedAt is nil; resolved rows are the history.
type Finding struct {
	ID         uint64 `gorm:"primaryKey;autoIncrement"`
	DeviceID   string `gorm:"size:36;index:idx_finding_open,priority:1"`
	Control    string `gorm:"size:64"`
	Subject    string `gorm:"size:64"`
	CJIS       string `gorm:"size:128"`
	Severity   string `gorm:"size:16"`
	Message    string `gorm:"size:1024"`
	Unknown    bool
	Grace      time.Duration
	FirstSeen  time.Time
	LastSeen   time.Time
	ResolvedAt *time.Time `gorm:"index:idx_finding_open,priority:2"`
	// Action is what enforcement did (the bluetooth_block command id).
	Action string `gorm:"size:128"`
	// DueAt is Deadline, kept by SaveFindings for the compliance sweep's
	// index; nil in rows saved before it existed.
	DueAt *time.Time
}

// Deadline is when the finding's grace runs out.
func (f *Finding) Deadline() time.Time { return f.FirstSeen.Add(f.Grace) }

// ProfileDoc is a stored compliance profile: the document as IT wrote it.
type ProfileDoc struct {
	Name      string `gorm:"primaryKey;size:64"`
	Document  string
	UpdatedAt time.Time
	UpdatedBy string `gorm:"size:256"`
}

// Group attaches a profile to devices.
type Group struct {
	Name    string `gorm:"primaryKey;size:64"`
	Profile string `gorm:"size:64"`
}

// DefaultGroup is every device's group until IT moves it.
const DefaultGroup = "default"

// BluetoothAllow is an approved Bluetooth device (agency policy T).
type BluetoothAllow struct {
	ID uint64 `gorm:"primaryKey;autoIncrement"`
	// Address is a full address or a three-octet OUI prefix, upper case.
	Address string `gorm:"size:17;index"`
	Name    string `gorm:"size:256"`
	Class   uint32
	// Scope is "agency", "group:<name>" or "device:<id>".
	Scope      string `gorm:"size:128"`
	ApprovedBy string `gorm:"size:256"`
	Reason     string `gorm:"size:1024"`
	ExpiresAt  *time.Time
	CreatedAt  time.Time
	// Request is the request this entry approved, if any.
	Request string `gorm:"size:36"`
}

// BluetoothRequest is a user's request for conditional approval:
// pending → endorsed (by the named supervisor) → approved or denied (IT).
type BluetoothRequest struct {
	ID         string `gorm:"primaryKey;size:36"`
	DeviceID   string `gorm:"size:36;index"`
	Address    string `gorm:"size:17"`
	Name       string `gorm:"size:256"`
	Class      uint32
	Reason     string `gorm:"size:1024"`
	Requester  string `gorm:"size:256"`
	Supervisor string `gorm:"size:256"`
	Status     string `gorm:"size:16;index"`
	EndorsedBy string `gorm:"size:256"`
	EndorsedAt *time.Time
	DecidedBy  string `gorm:"size:256"`
	DecidedAt  *time.Time
	Decision   string `gorm:"size:1024"`
	CreatedAt  time.Time
}

// OpenFindings returns the device's open findings.
func (s *Store) OpenFindings(ctx context.Context, deviceID string) ([]Finding, error) {
	var fs []Finding
	err := s.with(ctx).Where("device_id = ? AND resolved_at IS NULL", deviceID).Order("control, subject").Find(&fs).Error
	return fs, err
}

// AllOpenFindings returns every open finding.
func (s *Store) AllOpenFindings(ctx context.Context) ([]Finding, error) {
	var fs []Finding
	err := s.with(ctx).Where("resolved_at IS NULL").Order("device_id, control, subject").Find(&fs).Error
	return fs, err
}

// FindingHistory returns the device's findings, newest first.
func (s *Store) FindingHistory(ctx context.Context, deviceID string, limit int) ([]Finding, error) {
	var fs []Finding
	err := s.with(ctx).Where("device_id = ?", deviceID).Order("first_seen DESC, id DESC").Limit(limit).Find(&fs).Error
	return fs, err
}

// SaveFindings writes the result of one evaluation in one transaction:
// new and updated findings, and the resolution of those no longer failing.
func (s *Store) SaveFindings(ctx context.Context, upsert []Finding, resolve []uint64, at time.Time) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		for i := range upsert {
			due := upsert[i].Deadline()
			upsert[i].DueAt = &due
			if err := tx.Save(&upsert[i]).Error; err != nil {
				return err
			}
		}
		if len(resolve) > 0 {
			return tx.Model(&Finding{}).Where("id IN ?", resolve).Update("resolved_at", at).Error
		}
		return nil
	})
}

// SetFindingAction records what enforcement did about a finding.
func (s *Store) SetFindingAction(ctx context.Context, id uint64, action string) error {
	return s.with(ctx).Model(&Finding{}).Where("id = ?", id).Update("action", action).Error
}

// GetProfileDoc returns a stored profile.
func (s *Store) GetProfileDoc(ctx context.Context, name string) (*ProfileDoc, error) {
	var p ProfileDoc
	if err := s.with(ctx).First(&p, "name = ?", name).Error; err != nil {
		return nil, notFound(err)
	}
	return &p, nil
}

// ListProfileDocs returns every stored profile.
func (s *Store) ListProfileDocs(ctx context.Context) ([]ProfileDoc, error) {
	var ps []ProfileDoc
	err := s.with(ctx).Order("name").Find(&ps).Error
	return ps, err
}

// SaveProfileDoc stores a profile that has validated.
func (s *Store) SaveProfileDoc(ctx context.Context, p *ProfileDoc) error {
	return s.with(ctx).Save(p).Error
}

// EnsureProfile stores p unless a profile of that name exists, and
// attaches the default group to it unless the group exists: the shipped
// baseline on first start, never over IT's edits. ON CONFLICT DO NOTHING
// rather than look-then-insert: servers starting together on a new
// database would otherwise fail on each other's row.
func (s *Store) EnsureProfile(ctx context.Context, p *ProfileDoc) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(p).Error; err != nil {
			return err
		}
		return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&Group{Name: DefaultGroup, Profile: p.Name}).Error
	})
}

// GroupProfile returns the profile name of a group ("" → default).
func (s *Store) GroupProfile(ctx context.Context, group string) (string, error) {
	if group == "" {
		group = DefaultGroup
	}
	var g Group
	if err := s.with(ctx).First(&g, "name = ?", group).Error; err != nil {
		return "", notFound(err)
	}
	return g.Profile, nil
}

// SaveGroup creates or changes a group.
func (s *Store) SaveGroup(ctx context.Context, g *Group) error { return s.with(ctx).Save(g).Error }

// ListGroups returns every group.
func (s *Store) ListGroups(ctx context.Context) ([]Group, error) {
	var gs []Group
	err := s.with(ctx).Order("name").Find(&gs).Error
	return gs, err
}

// SetDeviceGroup moves a device to a group.
func (s *Store) SetDeviceGroup(ctx context.Context, deviceID, group string) error {
	res := s.with(ctx).Model(&Device{}).Where("id = ?", deviceID).Update("group_name", group)
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return res.Error
}

// BluetoothAllowList returns every entry, expired ones included (the
// caller judges expiry by its clock).
func (s *Store) BluetoothAllowList(ctx context.Context) ([]BluetoothAllow, error) {
	var as []BluetoothAllow
	err := s.with(ctx).Order("address, id").Find(&as).Error
	return as, err
}

// AddBluetoothAllow adds an entry.
func (s *Store) AddBluetoothAllow(ctx context.Context, a *BluetoothAllow) error {
	return s.with(ctx).Create(a).Error
}

// DeleteBluetoothAllow removes every entry for address.
func (s *Store) DeleteBluetoothAllow(ctx context.Context, address string) (int64, error) {
	res := s.with(ctx).Where("address = ?", address).Delete(&BluetoothAllow{})
	return res.RowsAffected, res.Error
}

// SaveBluetoothRequest creates or updates a request.
func (s *Store) SaveBluetoothRequest(ctx context.Context, r *BluetoothRequest) error {
	return s.with(ctx).Save(r).Error
}

// GetBluetoothRequest returns one request.
func (s *Store) GetBluetoothRequest(ctx context.Context, id string) (*BluetoothRequest, error) {
	var r BluetoothRequest
	if err := s.with(ctx).First(&r, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// ListBluetoothRequests returns requests, newest first.
func (s *Store) ListBluetoothRequests(ctx context.Context) ([]BluetoothRequest, error) {
	var rs []BluetoothRequest
	err := s.with(ctx).Order("created_at DESC, id").Find(&rs).Error
	return rs, err
}

// DecideBluetoothRequest approves (adding allow to the list in the same
// transaction) or denies an endorsed request; ErrConflict when it is not
// endorsed any more (decided meanwhile).
func (s *Store) DecideBluetoothRequest(ctx context.Context, r *BluetoothRequest, allow *BluetoothAllow) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&BluetoothRequest{}).Where("id = ? AND status = ?", r.ID, "endorsed").
			Updates(map[string]any{"status": r.Status, "decided_by": r.DecidedBy, "decided_at": r.DecidedAt, "decision": r.Decision})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrConflict
		}
		if allow != nil {
			return tx.Create(allow).Error
		}
		return nil
	})
}

// MarkEvaluated records that the device's compliance was evaluated.
func (s *Store) MarkEvaluated(ctx context.Context, deviceID string, at time.Time, fingerprint string) error {
	return s.with(ctx).Exec("UPDATE devices SET compliance_at = ?, evaluated_fingerprint = ? WHERE id = ?", at, fingerprint, deviceID).Error
}

// EvaluatedFingerprint is the fingerprint MarkEvaluated last recorded for
// the device: "" when none, or since ForgetEvaluations.
func (s *Store) EvaluatedFingerprint(ctx context.Context, deviceID string) (string, error) {
	var fp []string
	if err := s.with(ctx).Raw("SELECT evaluated_fingerprint FROM devices WHERE id = ?", deviceID).Scan(&fp).Error; err != nil {
		return "", err
	}
	if len(fp) == 0 {
		return "", ErrNotFound
	}
	return fp[0], nil
}

// ForgetEvaluations clears the recorded fingerprints of the devices
// given, or of every device when none is: what their findings were
// evaluated under (a profile, the allow-list) changed, so their next
// report is evaluated whatever it says.
func (s *Store) ForgetEvaluations(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return s.with(ctx).Exec("UPDATE devices SET evaluated_fingerprint = '' WHERE evaluated_fingerprint <> ''").Error
	}
	return s.with(ctx).Exec("UPDATE devices SET evaluated_fingerprint = '' WHERE id IN ?", ids).Error
}

// SetComplianceState records the device's state as last audited.
func (s *Store) SetComplianceState(ctx context.Context, deviceID, state string) error {
	return s.with(ctx).Model(&Device{}).Where("id = ?", deviceID).Update("compliance_state", state).Error
}

// DueFindingDevices returns the ids of the active devices, not recorded
// in state except, that have an open finding whose grace ran out by now
// (findings.due_at, indexed), and of those with an open finding saved
// before due_at existed: the devices whose state the clock may have
// changed, for the compliance sweep, instead of every device.
func (s *Store) DueFindingDevices(ctx context.Context, except string, now time.Time) ([]string, error) {
	var ids []string
	err := s.with(ctx).Model(&Finding{}).Distinct("findings.device_id").
		Joins("JOIN devices ON devices.id = findings.device_id").
		Where("findings.resolved_at IS NULL AND (findings.due_at IS NULL OR findings.due_at <= ?)", now).
		Where("devices.status = ? AND COALESCE(devices.compliance_state, '') <> ?", StatusActive, except).
		Order("findings.device_id").Pluck("findings.device_id", &ids).Error
	return ids, err
}
