package store

import (
	"context"

	"gorm.io/gorm"
)

// AuditQuery filters ListAudit.
type AuditQuery struct {
	AfterSeq int64
	// BeforeSeq, when set, keeps entries before it.
	BeforeSeq int64
	Action    string
	Target    string
	Limit     int
	// NewestFirst returns the newest matching entries first (a page of a
	// log read backwards) instead of the oldest.
	NewestFirst bool
}

// AppendAudit assigns e the next sequence number and the previous
// entry's hash, calls seal to compute e.Hash, and commits, all under the
// chain's write lock so concurrent writers (even other processes) cannot
// fork the chain.
func (s *Store) AppendAudit(ctx context.Context, e *AuditEntry, seal func(*AuditEntry)) error {
	return s.with(ctx).Transaction(func(tx *gorm.DB) error {
		// The UPDATE comes first so the lock is held before the head is read.
		if err := tx.Exec("UPDATE audit_heads SET seq = seq + 1 WHERE id = 1").Error; err != nil {
			return err
		}
		var head AuditHead
		if err := tx.First(&head, "id = 1").Error; err != nil {
			return err
		}
		e.Seq = head.Seq
		e.PrevHash = head.Hash
		seal(e)
		if err := tx.Create(e).Error; err != nil {
			return err
		}
		return tx.Model(&AuditHead{}).Where("id = 1").Update("hash", e.Hash).Error
	})
}

// ListAudit returns entries in sequence order.
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	if q.Limit <= 0 || q.Limit > 1000 {
		q.Limit = 1000
	}
	db := s.with(ctx).Where("seq > ?", q.AfterSeq)
	if q.Action != "" {
		db = db.Where("action = ?", q.Action)
	}
	if q.Target != "" {
		db = db.Where("target = ?", q.Target)
	}
	if q.BeforeSeq > 0 {
		db = db.Where("seq < ?", q.BeforeSeq)
	}
	order := "seq"
	if q.NewestFirst {
		order = "seq DESC"
	}
	var es []AuditEntry
	err := db.Order(order).Limit(q.Limit).Find(&es).Error
	return es, err
}

// WalkAudit calls fn for every entry in sequence order, reading in
// batches to bound memory.
func (s *Store) WalkAudit(ctx context.Context, fn func(*AuditEntry) error) error {
	var after int64
	for {
		var batch []AuditEntry
		if err := s.with(ctx).Where("seq > ?", after).Order("seq").Limit(500).Find(&batch).Error; err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		for i := range batch {
			if err := fn(&batch[i]); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].Seq
	}
}

// AuditHeadSeq returns the sequence number of the newest entry.
func (s *Store) AuditHeadSeq(ctx context.Context) (int64, string, error) {
	var head AuditHead
	err := s.with(ctx).First(&head, "id = 1").Error
	return head.Seq, head.Hash, err
}
