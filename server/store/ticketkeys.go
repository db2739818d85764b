package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// TicketKey is one rotation epoch's TLS session-ticket key, sealed by
// server/ticketkeys: the store never sees it in clear.
type TicketKey struct {
	Epoch     int64 `gorm:"primaryKey;autoIncrement:false"`
	Sealed    []byte
	CreatedAt time.Time
}

// TicketKeyBlobs returns the sealed keys of epoch from and later.
func (s *Store) TicketKeyBlobs(ctx context.Context, from int64) (map[int64][]byte, error) {
	var rows []TicketKey
	if err := s.with(ctx).Where("epoch >= ?", from).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make(map[int64][]byte, len(rows))
	for _, r := range rows {
		out[r.Epoch] = r.Sealed
	}
	return out, nil
}

// AddTicketKeyBlob stores the sealed key of epoch unless that epoch has
// one: the first process to write it wins, the others read its key.
func (s *Store) AddTicketKeyBlob(ctx context.Context, epoch int64, sealed []byte) error {
	return s.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&TicketKey{Epoch: epoch, Sealed: sealed, CreatedAt: time.Now().UTC()}).Error
}

// PruneTicketKeyBlobs deletes the keys of epochs before before.
func (s *Store) PruneTicketKeyBlobs(ctx context.Context, before int64) error {
	return s.with(ctx).Where("epoch < ?", before).Delete(&TicketKey{}).Error
}
