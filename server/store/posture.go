package store

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// PostureStore keeps the latest report, a bounded history and the
// lock-state timeline.
type PostureStore interface {
	// SavePosture commits one report. It reports duplicate=true when the
	// device already sent this report id (a resend after a lost ack),
	// in which case nothing changes.
	SavePosture(ctx context.Context, r *PostureReport, lock *LockEvent) (duplicate bool, err error)
	PostureHistory(ctx context.Context, deviceID string, limit int) ([]PostureReport, error)
	LockTimeline(ctx context.Context, deviceID string) ([]LockEvent, error)
}

// SavePosture implements PostureStore.
func (s *Store) SavePosture(ctx context.Context, r *PostureReport, lock *LockEvent) (bool, error) {
	dup := false
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(r)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			dup = true
			return nil
		}
		// Only a newer report replaces the latest posture: spooled reports
		// delivered after a reconnect must not overwrite a fresher one.
		if err := tx.Model(&Device{}).
			Where("id = ? AND (posture_at IS NULL OR posture_at <= ?)", r.DeviceID, r.CollectedAt).
			Updates(map[string]any{"posture": r.Body, "posture_at": r.CollectedAt, "last_seen": r.ReceivedAt}).Error; err != nil {
			return err
		}
		if lock != nil {
			var last LockEvent
			err := tx.Where("device_id = ?", r.DeviceID).Order("at DESC, id DESC").Limit(1).Find(&last).Error
			if err != nil {
				return err
			}
			if last.ID == 0 || last.State != lock.State {
				if err := tx.Create(lock).Error; err != nil {
					return err
				}
			}
		}
		return tx.Exec(`DELETE FROM posture_reports WHERE device_id = ? AND id <= (
			SELECT id FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
			r.DeviceID, r.DeviceID, s.historyLimit).Error
	})
	return dup, err
}

// PostureHistory returns up to limit reports, newest first.
func (s *Store) PostureHistory(ctx context.Context, deviceID string, limit int) ([]PostureReport, error) {
	var rs []PostureReport
	err := s.with(ctx).Where("device_id = ?", deviceID).Order("id DESC").Limit(limit).Find(&rs).Error
	return rs, err
}

// LockTimeline returns the device's lock-state changes, oldest first.
func (s *Store) LockTimeline(ctx context.Context, deviceID string) ([]LockEvent, error) {
	var es []LockEvent
	err := s.with(ctx).Where("device_id = ?", deviceID).Order("at, id").Find(&es).Error
	return es, err
}
