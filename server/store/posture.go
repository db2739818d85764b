package store

import (
	"context"

	"gorm.io/gorm"
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
	// The statements are written out rather than built by gorm: this is
	// the ingest path, and on SQLite gorm's building and the driver's
	// parsing (which it repeats on every execution) are most of a
	// report's cost (BenchmarkIngest).
	dup := false
	err := s.inTxOrNot(ctx, func(tx *gorm.DB) error {
		res := tx.Exec(`INSERT INTO posture_reports (device_id, report_id, received_at, collected_at, trusted_at, clock_skew, skew_seconds, body)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.DeviceID, r.ReportID, r.ReceivedAt, r.CollectedAt, r.TrustedAt, r.ClockSkew, r.SkewSeconds, r.Body)
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
		// The same statement counts the device's history (posture_count),
		// so that pruning it is a look at the oldest rows, not a walk
		// past the newest limit ones on every report.
		const newer = "(posture_at IS NULL OR posture_at <= ? OR posture_at > ?)"
		var counts []int64
		if err := tx.Raw(`UPDATE devices SET posture = CASE WHEN `+newer+` THEN ? ELSE posture END,
			posture_at = CASE WHEN `+newer+` THEN ? ELSE posture_at END,
			posture_skew_seconds = CASE WHEN `+newer+` THEN ? ELSE posture_skew_seconds END,
			last_seen = CASE WHEN `+newer+` THEN ? ELSE last_seen END,
			posture_count = posture_count + 1 WHERE id = ? RETURNING posture_count`,
			r.TrustedAt, r.ReceivedAt, r.Body, r.TrustedAt, r.ReceivedAt, r.TrustedAt, r.TrustedAt, r.ReceivedAt, skew,
			r.TrustedAt, r.ReceivedAt, r.ReceivedAt, r.DeviceID).Scan(&counts).Error; err != nil {
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
			res := tx.Exec(`INSERT INTO lock_events (device_id, at, state, source, clock_skew, skew_seconds)
				SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM (SELECT state FROM lock_events
				WHERE device_id = ? AND at <= ? ORDER BY at DESC, id DESC LIMIT 1) prev WHERE prev.state = ?)`,
				lock.DeviceID, lock.At, lock.State, lock.Source, lock.ClockSkew, lock.SkewSeconds, r.DeviceID, lock.At, lock.State)
			if err := res.Error; err != nil {
				return err
			}
		}
		return s.prune(tx, r.DeviceID, counts)
	})
	return dup, err
}

// prune keeps the device's newest historyLimit reports. counts is the
// device's posture_count after this report, none for a report of a
// device that has no row (only tests send those): its history is then
// pruned by walking it.
func (s *Store) prune(tx *gorm.DB, deviceID string, counts []int64) error {
	if len(counts) == 0 {
		return tx.Exec(`DELETE FROM posture_reports WHERE device_id = ? AND id <= (
			SELECT id FROM posture_reports WHERE device_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
			deviceID, deviceID, s.historyLimit).Error
	}
	over := counts[0] - int64(s.historyLimit)
	if over <= 0 {
		return nil
	}
	res := tx.Exec(`DELETE FROM posture_reports WHERE id IN (
		SELECT id FROM posture_reports WHERE device_id = ? ORDER BY id LIMIT ?)`, deviceID, over)
	if res.Error != nil {
		return res.Error
	}
	return tx.Exec("UPDATE devices SET posture_count = posture_count - ? WHERE id = ?", res.RowsAffected, deviceID).Error
}

// inTxOrNot runs fn in a transaction of its own, or, when s already is
// one (InTx, a Writer's batch), directly in it: the caller's transaction
// (and the writer's savepoint) already makes fn all or nothing, and a
// nested savepoint would cost two more statements per write.
func (s *Store) inTxOrNot(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.changed != nil {
		return fn(s.with(ctx))
	}
	return s.with(ctx).Transaction(fn)
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
