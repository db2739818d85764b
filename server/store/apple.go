package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// CheckInDevice records a device that checked in over a protocol that
// names itself (Apple MDM's Authenticate): it creates d when its id is
// new and reports created; otherwise it refreshes what the device said
// about itself (name, platform, OS, serial) and its last contact, leaving
// owner, group, posture and enrollment time as they were. A revoked
// device stays revoked: its check-in is ErrConflict and nothing changes,
// since only IT re-enrolls a device the LASO took away.
func (s *Store) CheckInDevice(ctx context.Context, d *Device) (created bool, err error) {
	err = s.with(ctx).Transaction(func(tx *gorm.DB) error {
		var cur Device
		switch err := tx.First(&cur, "id = ?", d.ID).Error; {
		case errors.Is(err, gorm.ErrRecordNotFound):
			created = true
			return tx.Create(d).Error
		case err != nil:
			return err
		case cur.Status == StatusRevoked:
			return ErrConflict
		}
		return tx.Model(&Device{}).Where("id = ?", d.ID).Updates(map[string]any{
			"name": d.Name, "hostname": d.Hostname, "platform": d.Platform, "os_name": d.OSName,
			"os_version": d.OSVersion, "serial": d.Serial, "last_seen": d.LastSeen}).Error
	})
	return created, err
}

// AppleEnrollment is what Cordon keeps of an Apple device's MDM
// enrollment beyond its device row: the UDID nanomdm addresses it by
// (the device id derives from the identity certificate, not the UDID,
// for a SCEP-enrolled device), whether it is supervised (lost mode is
// offered only then), the incident lost mode was enabled for, and when
// its posture queries were last sent.
type AppleEnrollment struct {
	DeviceID         string `gorm:"primaryKey;size:36"`
	UDID             string `gorm:"column:udid;size:128;uniqueIndex"`
	Supervised       bool
	LostModeIncident string `gorm:"size:36"`
	LostModeAt       *time.Time
	QueriedAt        *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// SaveAppleEnrollment records that deviceID is the enrollment udid. A
// UDID enrolled before under another device id (a wiped iPhone
// re-enrolled with a new profile) now belongs to deviceID alone.
func (s *Store) SaveAppleEnrollment(ctx context.Context, deviceID, udid string, now time.Time) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("udid = ? AND device_id <> ?", udid, deviceID).Delete(&AppleEnrollment{}).Error; err != nil {
			return err
		}
		res := tx.Model(&AppleEnrollment{}).Where("device_id = ?", deviceID).Updates(map[string]any{"udid": udid, "updated_at": now})
		if res.Error != nil || res.RowsAffected > 0 {
			return res.Error
		}
		return tx.Create(&AppleEnrollment{DeviceID: deviceID, UDID: udid, CreatedAt: now, UpdatedAt: now}).Error
	})
}

// GetAppleEnrollment returns deviceID's enrollment; ErrNotFound for a
// device that is not an enrolled Apple device.
func (s *Store) GetAppleEnrollment(ctx context.Context, deviceID string) (*AppleEnrollment, error) {
	var e AppleEnrollment
	if err := s.with(ctx).First(&e, "device_id = ?", deviceID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &e, nil
}

// GetAppleEnrollmentOfUDID returns the enrollment of udid; ErrNotFound
// when no device is enrolled as it.
func (s *Store) GetAppleEnrollmentOfUDID(ctx context.Context, udid string) (*AppleEnrollment, error) {
	var e AppleEnrollment
	if err := s.with(ctx).First(&e, "udid = ?", udid).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return &e, nil
}

// DueAppleEnrollments are the enrollments never asked for their posture
// or last asked before askedBefore: never-asked first, then oldest first.
// The sweep asks only these, through the queried_at index, instead of
// reading every enrollment each round.
func (s *Store) DueAppleEnrollments(ctx context.Context, askedBefore time.Time) ([]AppleEnrollment, error) {
	var es []AppleEnrollment
	err := s.with(ctx).Where("queried_at IS NULL OR queried_at < ?", askedBefore).
		Order("queried_at IS NOT NULL, queried_at, device_id").Find(&es).Error
	return es, err
}

// UpdateAppleEnrollment sets the named columns (supervised,
// lost_mode_incident, lost_mode_at, queried_at) of deviceID's
// enrollment; ErrNotFound when there is none.
func (s *Store) UpdateAppleEnrollment(ctx context.Context, deviceID string, cols map[string]any, now time.Time) error {
	for k := range cols {
		switch k {
		case "supervised", "lost_mode_incident", "lost_mode_at", "queried_at":
		default:
			return fmt.Errorf("apple enrollment has no settable column %q", k)
		}
	}
	set := map[string]any{"updated_at": now}
	for k, v := range cols {
		set[k] = v
	}
	res := s.with(ctx).Model(&AppleEnrollment{}).Where("device_id = ?", deviceID).Updates(set)
	if res.Error == nil && res.RowsAffected == 0 {
		return ErrNotFound
	}
	return res.Error
}
