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
// queued ones and delivered ones never answered, oldest first. Those
// past their not-after are marked expired on the way and returned apart,
// so that the queue records their end as the sweep would.
func (s *Store) Deliverable(ctx context.Context, deviceID string, now time.Time) (deliver, expired []Command, err error) {
	err = s.with(ctx).Transaction(func(tx *gorm.DB) error {
		if expired, err = expire(tx.Where("device_id = ?", deviceID), now); err != nil {
			return err
		}
		return tx.Where("device_id = ? AND status IN ?", deviceID, []string{CommandQueued, CommandDelivered}).
			Order("created_at, id").Find(&deliver).Error
	})
	return deliver, expired, err
}

// openStatuses are the statuses a command can expire from.
var openStatuses = []string{CommandQueued, CommandDelivered, CommandHeld}

// expire marks the open commands scope selects that are past their
// not-after expired at now, and returns the ones this call expired, as
// they were before. Each is updated on its own condition, so one that
// another process (the sweep, a redelivery elsewhere) expired first is
// not returned: its end is counted and audited once.
func expire(scope *gorm.DB, now time.Time) ([]Command, error) {
	var due []Command
	if err := scope.Omit("frame").Where("status IN ? AND not_after < ?", openStatuses, now).
		Order("created_at, id").Find(&due).Error; err != nil {
		return nil, err
	}
	tx := scope.Session(&gorm.Session{NewDB: true})
	var done []Command
	for _, c := range due {
		res := tx.Model(&Command{}).Where("id = ? AND status IN ?", c.ID, openStatuses).
			Updates(map[string]any{"status": CommandExpired, "completed_at": now})
		if res.Error != nil {
			return nil, res.Error
		}
		if res.RowsAffected == 1 {
			done = append(done, c)
		}
	}
	return done, nil
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
	err := s.with(ctx).Transaction(func(tx *gorm.DB) (err error) {
		cs, err = expire(tx, now)
		return err
	})
	return cs, err
}

// DeviceCommands returns the device's newest commands first.
func (s *Store) DeviceCommands(ctx context.Context, deviceID string, limit int) ([]Command, error) {
	var cs []Command
	return cs, s.with(ctx).Omit("frame").Where("device_id = ?", deviceID).Order("created_at DESC").Limit(limit).Find(&cs).Error
}

// CommandBacklog is the commands in one unfinished status: how many, and
// when the oldest of them was created.
type CommandBacklog struct {
	Status string
	Count  int64
	Oldest time.Time
}

// UnfinishedCommands counts the commands not yet final (queued,
// delivered, held) per status, with the oldest's creation time, in one
// grouped query; a status with none is absent.
func (s *Store) UnfinishedCommands(ctx context.Context) ([]CommandBacklog, error) {
	var rows []struct {
		Status string
		N      int64
		Oldest anyTime
	}
	err := s.with(ctx).Model(&Command{}).Select("status, COUNT(*) AS n, MIN(created_at) AS oldest").
		Where("status IN ?", []string{CommandQueued, CommandDelivered, CommandHeld}).Group("status").Order("status").Scan(&rows).Error
	if err != nil {
		return nil, err
	}
	out := make([]CommandBacklog, len(rows))
	for i, r := range rows {
		out[i] = CommandBacklog{Status: r.Status, Count: r.N, Oldest: time.Time(r.Oldest)}
	}
	return out, nil
}
