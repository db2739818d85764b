package store

import (
	"context"
	"time"

	"gorm.io/gorm/clause"
)

// AuditCheckpoint is a signed checkpoint of the audit chain (AU-9). The
// copy in the database serves the API and backups; the server also
// appends each one to a file in the data dir, which a database writer
// cannot reach.
type AuditCheckpoint struct {
	Seq       int64  `gorm:"primaryKey;autoIncrement:false"`
	Hash      string `gorm:"size:64"`
	Time      time.Time
	Signature string `gorm:"size:128"` // base64 Ed25519
}

// AuditCheckpointStore keeps checkpoints and prunes the chain up to one.
// server/audit's Anchor embeds it in the interface it takes.
type AuditCheckpointStore interface {
	SaveAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error
	ListAuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error)
	// FirstAuditSeqSince is the lowest seq of an entry at or after t
	// (ok false when there is none).
	FirstAuditSeqSince(ctx context.Context, t time.Time) (seq int64, ok bool, err error)
	// PruneAudit removes the entries up to and including seq.
	PruneAudit(ctx context.Context, throughSeq int64) (int64, error)
}

var _ AuditCheckpointStore = (*Store)(nil)

// SaveAuditCheckpoint implements AuditCheckpointStore; a checkpoint of
// an entry already checkpointed is kept as it was.
func (s *Store) SaveAuditCheckpoint(ctx context.Context, c *AuditCheckpoint) error {
	return s.with(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(c).Error
}

// ListAuditCheckpoints implements AuditCheckpointStore, oldest first.
func (s *Store) ListAuditCheckpoints(ctx context.Context) ([]AuditCheckpoint, error) {
	var cs []AuditCheckpoint
	err := s.with(ctx).Order("seq").Find(&cs).Error
	return cs, err
}

// FirstAuditSeqSince implements AuditCheckpointStore.
func (s *Store) FirstAuditSeqSince(ctx context.Context, t time.Time) (int64, bool, error) {
	var seq *int64
	err := s.with(ctx).Model(&AuditEntry{}).Where("time >= ?", t.UTC()).Select("MIN(seq)").Scan(&seq).Error
	if err != nil || seq == nil {
		return 0, false, err
	}
	return *seq, true, nil
}

// PruneAudit implements AuditCheckpointStore.
func (s *Store) PruneAudit(ctx context.Context, throughSeq int64) (int64, error) {
	res := s.with(ctx).Where("seq <= ?", throughSeq).Delete(&AuditEntry{})
	return res.RowsAffected, res.Error
}

// LatestAuditCheckpoint is the newest checkpoint by time (ErrNotFound
// when none was signed yet): the age operators alert on.
func (s *Store) LatestAuditCheckpoint(ctx context.Context) (*AuditCheckpoint, error) {
	var c AuditCheckpoint
	if err := s.with(ctx).Order("time DESC, seq DESC").First(&c).Error; err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}
