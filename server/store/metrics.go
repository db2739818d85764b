package store

import (
	"context"
	"fmt"
	"time"
)

// The grouped reads below are what the metric collectors take at each
// scrape: one query per figure, counted by the database, so a scrape
// costs the same for ten devices as for ten thousand (bar the count).

// DeviceCount is how many active devices share a platform, a compliance
// state and an online flag.
type DeviceCount struct {
	Platform   string
	Compliance string
	Online     bool
	Count      int64
}

// DeviceCounts counts the active devices by platform (as stored), the
// compliance state last recorded ("" is "unknown"; a device an incident
// holds is "quarantined" whatever was recorded, as the API shows it) and
// the online flag.
func (s *Store) DeviceCounts(ctx context.Context) ([]DeviceCount, error) {
	var rows []DeviceCount
	err := s.with(ctx).Model(&Device{}).
		Select(`platform, CASE WHEN quarantined_at IS NOT NULL THEN 'quarantined'
			WHEN compliance_state IS NULL OR compliance_state = '' THEN 'unknown' ELSE compliance_state END AS compliance,
			online, count(*) AS count`).
		Where("status = ?", StatusActive).Group("platform, compliance, online").Scan(&rows).Error
	return rows, err
}

// IncidentCount is how many open incidents share a category and a
// severity.
type IncidentCount struct {
	Category string
	Severity string
	Count    int64
}

// OpenIncidentCounts counts the incidents not yet resolved or closed by
// category and severity.
func (s *Store) OpenIncidentCounts(ctx context.Context) ([]IncidentCount, error) {
	var rows []IncidentCount
	err := s.with(ctx).Model(&Incident{}).Select("category, severity, count(*) AS count").
		Where("status NOT IN ?", ClosedIncidentStatuses).Group("category, severity").Scan(&rows).Error
	return rows, err
}

// UnreportedIncidents counts the open incidents created at or before
// createdBy for which no notification has been accepted yet (no row of
// theirs about the incident itself with a sent_at): IR-6's reporting
// clock, counted in the database. With createdBy = now - the deadline it
// is the overdue incidents.
func (s *Store) UnreportedIncidents(ctx context.Context, createdBy time.Time) (int64, error) {
	var n int64
	err := s.with(ctx).Model(&Incident{}).
		Where("status NOT IN ? AND created_at <= ?", ClosedIncidentStatuses, createdBy).
		Where(`NOT EXISTS (SELECT 1 FROM notifications WHERE notifications.incident_id = incidents.id
			AND notifications.about = '' AND notifications.sent_at IS NOT NULL)`).Count(&n).Error
	return n, err
}

// OutboxChannel is the undelivered part of the outbox on one channel.
type OutboxChannel struct {
	Channel string
	Depth   int64
	// Oldest is the creation time of the oldest undelivered message.
	Oldest time.Time
}

// Outbox counts the undelivered messages (never accepted: no sent_at)
// per channel, with the oldest one's creation time.
func (s *Store) Outbox(ctx context.Context) ([]OutboxChannel, error) {
	rows, err := s.with(ctx).Model(&Notification{}).Select("channel, count(*), MIN(created_at)").
		Where("sent_at IS NULL").Group("channel").Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []OutboxChannel
	for rows.Next() {
		var c OutboxChannel
		var oldest anyTime
		if err := rows.Scan(&c.Channel, &c.Depth, &oldest); err != nil {
			return nil, fmt.Errorf("oldest undelivered notification: %w", err)
		}
		c.Oldest = time.Time(oldest)
		out = append(out, c)
	}
	return out, rows.Err()
}

// NearestDeviceCertExpiry is the soonest NotAfter among the certificates
// active devices hold now (each device's current one, unrevoked); nil
// when there is none.
func (s *Store) NearestDeviceCertExpiry(ctx context.Context) (*time.Time, error) {
	var v anyTime
	err := s.with(ctx).Raw(`SELECT MIN(certificates.not_after) FROM certificates
		JOIN devices ON devices.cert_serial = certificates.serial
		WHERE devices.status = ? AND NOT certificates.revoked`, StatusActive).Row().Scan(&v)
	if err != nil {
		return nil, fmt.Errorf("nearest device certificate: %w", err)
	}
	if time.Time(v).IsZero() {
		return nil, nil
	}
	t := time.Time(v)
	return &t, nil
}
