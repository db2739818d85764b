package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// Wipe receipt statuses. Only a verified receipt is proof of a wipe.
const (
	ReceiptVerified   = "verified"
	ReceiptUnverified = "unverified"
)

// WipeReceipt is a wipe's receipt as the server received and judged it
// (migration 00012).
type WipeReceipt struct {
	CommandID  string `gorm:"primaryKey;size:36"`
	DeviceID   string `gorm:"size:36;index:idx_wipe_receipts_device"`
	Status     string `gorm:"size:16"`
	Reason     string `gorm:"size:1024"`
	Digest     string `gorm:"size:64"`
	CertSerial string `gorm:"size:64"`
	// Body is the receipt's canonical encoding, the bytes verified.
	Body       string
	ReceivedAt time.Time
}

// AddWipeReceipt stores a command's receipt unless it has one: the first
// answer to a command is the one kept (Complete), and so is its receipt.
// It reports whether this call stored it.
func (s *Store) AddWipeReceipt(ctx context.Context, r *WipeReceipt) (bool, error) {
	res := s.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(r)
	return res.RowsAffected == 1, res.Error
}

// GetWipeReceipt returns a command's receipt, ErrNotFound when it has none.
func (s *Store) GetWipeReceipt(ctx context.Context, commandID string) (*WipeReceipt, error) {
	var r WipeReceipt
	if err := s.with(ctx).First(&r, "command_id = ?", commandID).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// DeviceWipeReceipts returns the receipts of a device's wipes, newest first.
func (s *Store) DeviceWipeReceipts(ctx context.Context, deviceID string) ([]WipeReceipt, error) {
	var rs []WipeReceipt
	return rs, s.with(ctx).Where("device_id = ?", deviceID).Order("received_at DESC, command_id").Limit(100).Find(&rs).Error
}
