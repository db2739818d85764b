package store

import (
	"context"
	"errors"

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
