package store

import (
	"context"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// SavePosture commits one report, keeping the latest report, a bounded
// history and the lock-state timeline, all ordered by the reports'
// trusted times. It reports duplicate=true when the device already sent
// this report id (a resend after a lost ack), in which case nothing
// changes. lock, when not nil, is recorded at the report's TrustedAt,
// with its clock flags.
func (s *Store) SavePosture(ctx context.Context, r *PostureReport, lock *LockEvent) (bool, error) {
	if r.TrustedAt.IsZero() || r.TrustedAt.After(r.ReceivedAt) {
		// The caller decides what to trust; without a decision no report
		// may still move ahead of its own receipt.
		r.TrustedAt = r.CollectedAt
		if r.TrustedAt.After(r.ReceivedAt) {
			r.TrustedAt = r.ReceivedAt
		}
	}
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
		// A posture_at after this report's receipt was never trustworthy
		// (stored before times were checked, from a clock set ahead), so
		// it is replaced too rather than pinning the device's posture.
		var skew *int64
		if r.ClockSkew {
			skew = &r.SkewSeconds
		}
		if err := tx.Model(&Device{}).
			Where("id = ? AND (posture_at IS NULL OR posture_at <= ? OR posture_at > ?)", r.DeviceID, r.TrustedAt, r.ReceivedAt).
			Updates(map[string]any{"posture": r.Body, "posture_at": r.TrustedAt, "posture_skew_seconds": skew,
				"last_seen": r.ReceivedAt}).Error; err != nil {
			return err
		}
		if lock != nil {
			lock.At, lock.ClockSkew, lock.SkewSeconds = r.TrustedAt, r.ClockSkew, r.SkewSeconds
			// The change is against the state in force at the report's
			// time, not the newest entry: a spooled report fills in the
			// past without being compared with what came after it. (The
			// agent sends its spool oldest first; a past report that
			// arrives after a newer one with an unchanged state still
			// reads as lasting until the next recorded change.)
			var prev LockEvent
			err := tx.Where("device_id = ? AND at <= ?", r.DeviceID, lock.At).Order("at DESC, id DESC").Limit(1).Find(&prev).Error
			if err != nil {
				return err
			}
			if prev.ID == 0 || prev.State != lock.State {
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

// RecentClock is the clock record (times and skew flags, no body) of the
// device's last n reports, newest received first.
func (s *Store) RecentClock(ctx context.Context, deviceID string, n int) ([]PostureReport, error) {
	var rs []PostureReport
	err := s.with(ctx).Select("id", "device_id", "report_id", "received_at", "collected_at", "trusted_at", "clock_skew", "skew_seconds").
		Where("device_id = ?", deviceID).Order("id DESC").Limit(n).Find(&rs).Error
	return rs, err
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
