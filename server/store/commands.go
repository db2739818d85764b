package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Command statuses.
const (
	CommandQueued    = "queued"
	CommandHeld      = "held"
	CommandDelivered = "delivered"
	CommandDone      = "done"
	CommandFailed    = "failed"
	CommandExpired   = "expired"
)

// Command is a remote command, written before anyone is told it exists.
type Command struct {
	ID          string    `gorm:"primaryKey;size:36"`
	DeviceID    string    `gorm:"size:36;index:idx_cmd_device_status"`
	Kind        string    `gorm:"size:32;index:idx_cmd_kind_created"`
	Address     string    `gorm:"size:64"`
	Issuer      string    `gorm:"size:256"`
	IssuerRole  string    `gorm:"size:32"`
	Source      string    `gorm:"size:64"`
	CreatedAt   time.Time `gorm:"index:idx_cmd_kind_created"`
	NotAfter    time.Time
	Status      string `gorm:"size:16;index:idx_cmd_device_status"`
	ApprovedBy  string `gorm:"size:256"`
	DeliveredAt *time.Time
	CompletedAt *time.Time
	Result      string // the agent's result, JSON
	// Frame is the signed command frame exactly as delivered, so a
	// redelivery is byte-identical and needs no key.
	Frame []byte
	// RolloutID is the agent rollout that issued an update, "" otherwise.
	RolloutID string `gorm:"size:36;index:idx_cmd_rollout"`
}

// CreateCommand stores a new command.
func (s *Store) CreateCommand(ctx context.Context, c *Command) error {
	return s.with(ctx).Create(c).Error
}

// GetCommand returns one command.
func (s *Store) GetCommand(ctx context.Context, id string) (*Command, error) {
	var c Command
	if err := s.with(ctx).First(&c, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// CountCommandsSince counts commands of kind created at or after since.
func (s *Store) CountCommandsSince(ctx context.Context, kind string, since time.Time) (int64, error) {
	var n int64
	err := s.with(ctx).Model(&Command{}).Where("kind = ? AND created_at >= ?", kind, since).Count(&n).Error
	return n, err
}

// Deliverable returns the device's commands that should be (re)sent:
// queued ones and delivered ones never answered, oldest first. Expired
// ones are marked expired on the way.
func (s *Store) Deliverable(ctx context.Context, deviceID string, now time.Time) ([]Command, error) {
	if err := s.with(ctx).Model(&Command{}).
		Where("device_id = ? AND status IN ? AND not_after < ?", deviceID, []string{CommandQueued, CommandDelivered, CommandHeld}, now).
		Updates(map[string]any{"status": CommandExpired, "completed_at": now}).Error; err != nil {
		return nil, err
	}
	var cs []Command
	err := s.with(ctx).Where("device_id = ? AND status IN ?", deviceID, []string{CommandQueued, CommandDelivered}).
		Order("created_at, id").Find(&cs).Error
	return cs, err
}

// MarkDelivered records that the frame went out on a connection. Only a
// queued command moves; a later status is never overwritten.
func (s *Store) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return s.with(ctx).Model(&Command{}).Where("id = ? AND status = ?", id, CommandQueued).
		Updates(map[string]any{"status": CommandDelivered, "delivered_at": at}).Error
}

// Complete records the agent's result. A command already completed keeps
// its first result (a redelivered command's repeated answer changes
// nothing); the returned bool says whether this call completed it.
func (s *Store) Complete(ctx context.Context, deviceID, id, status, result string, at time.Time) (*Command, bool, error) {
	var c Command
	changed := false
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.First(&c, "id = ? AND device_id = ?", id, deviceID).Error; err != nil {
			return notFound(err)
		}
		if c.Status != CommandQueued && c.Status != CommandDelivered {
			return nil
		}
		upd := map[string]any{"status": status, "completed_at": at, "result": result}
		if c.DeliveredAt == nil {
			upd["delivered_at"] = at
		}
		if err := tx.Model(&c).Updates(upd).Error; err != nil {
			return err
		}
		changed = true
		return tx.First(&c, "id = ?", id).Error
	})
	return &c, changed, err
}

// Approve releases a held command, recording who approved it.
func (s *Store) Approve(ctx context.Context, id, approver string) (*Command, error) {
	var c Command
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.First(&c, "id = ?", id).Error; err != nil {
			return notFound(err)
		}
		if c.Status != CommandHeld {
			return ErrConflict
		}
		if err := tx.Model(&c).Updates(map[string]any{"status": CommandQueued, "approved_by": approver}).Error; err != nil {
			return err
		}
		return tx.First(&c, "id = ?", id).Error
	})
	return &c, err
}

// ExpireCommands marks every unanswered command past its not-after as
// expired and returns them.
func (s *Store) ExpireCommands(ctx context.Context, now time.Time) ([]Command, error) {
	var cs []Command
	err := s.with(ctx).Transaction(func(tx *gorm.DB) error {
		open := []string{CommandQueued, CommandDelivered, CommandHeld}
		if err := tx.Where("status IN ? AND not_after < ?", open, now).Find(&cs).Error; err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		ids := make([]string, len(cs))
		for i, c := range cs {
			ids[i] = c.ID
		}
		return tx.Model(&Command{}).Where("id IN ? AND status IN ?", ids, open).
			Updates(map[string]any{"status": CommandExpired, "completed_at": now}).Error
	})
	return cs, err
}

// DeviceCommands returns the device's newest commands first.
func (s *Store) DeviceCommands(ctx context.Context, deviceID string, limit int) ([]Command, error) {
	var cs []Command
	return cs, s.with(ctx).Omit("frame").Where("device_id = ?", deviceID).Order("created_at DESC").Limit(limit).Find(&cs).Error
}
