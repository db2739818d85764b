package store

import (
	"context"
	"time"
)

// Notification is one message in the durable outbox: written with the
// change that causes it, sent by the notifier, retried until it goes.
type Notification struct {
	ID string `gorm:"primaryKey;size:36"`
	// IncidentID is what the message is about: an incident, or, when
	// About is "bluetooth_request", that request.
	IncidentID  string `gorm:"size:36;index"`
	About       string `gorm:"size:32"`
	Channel     string `gorm:"size:16"` // "email"
	Recipient   string `gorm:"size:256"`
	Subject     string `gorm:"size:512"`
	Body        string
	CreatedAt   time.Time
	Attempts    int
	NextAttempt time.Time `gorm:"index"`
	// SentAt is when the SMTP server or the webhook accepted the
	// message (IR-6's reporting clock).
	SentAt    *time.Time
	LastError string `gorm:"size:1024"`
}

// UsersWithRoles returns the users holding any of roles.
func (s *Store) UsersWithRoles(ctx context.Context, roles ...string) ([]User, error) {
	var us []User
	err := s.with(ctx).Where("role IN ?", roles).Order("email").Find(&us).Error
	return us, err
}

// QueueNotifications adds messages to the outbox.
func (s *Store) QueueNotifications(ctx context.Context, ns []Notification) error {
	if len(ns) == 0 {
		return nil
	}
	return s.with(ctx).Create(&ns).Error
}

// DueNotifications returns unsent messages whose next attempt has come.
func (s *Store) DueNotifications(ctx context.Context, now time.Time, limit int) ([]Notification, error) {
	var ns []Notification
	err := s.with(ctx).Where("sent_at IS NULL AND next_attempt <= ?", now).Order("created_at, id").Limit(limit).Find(&ns).Error
	return ns, err
}

// NotificationResult records one attempt.
func (s *Store) NotificationResult(ctx context.Context, n *Notification) error {
	return s.with(ctx).Model(n).Updates(map[string]any{"attempts": n.Attempts, "next_attempt": n.NextAttempt,
		"sent_at": n.SentAt, "last_error": n.LastError}).Error
}

// IncidentNotifications lists an incident's messages, for the incident view.
func (s *Store) IncidentNotifications(ctx context.Context, incidentID string) ([]Notification, error) {
	var ns []Notification
	err := s.with(ctx).Where("incident_id = ?", incidentID).Order("created_at, id").Find(&ns).Error
	return ns, err
}

// NotificationsForIncidents lists the messages of several incidents at
// once, for incident lists that show each one's reporting clock.
func (s *Store) NotificationsForIncidents(ctx context.Context, ids []string) ([]Notification, error) {
	var ns []Notification
	if len(ids) == 0 {
		return ns, nil
	}
	err := s.with(ctx).Where("incident_id IN ?", ids).Order("created_at, id").Find(&ns).Error
	return ns, err
}
