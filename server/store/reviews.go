package store

import (
	"context"
	"time"
)

// AuditReview is one periodic review of the audit log (AU-6, agency
// policy F.2/F.3): the summary Cordon produced for a period, and the
// LASO's record that it was reviewed.
type AuditReview struct {
	ID          string `gorm:"primaryKey;size:36"`
	PeriodStart time.Time
	PeriodEnd   time.Time `gorm:"index"`
	CreatedAt   time.Time
	// Summary is the review's JSON (review.Summary).
	Summary    string
	ReviewedAt *time.Time
	ReviewedBy string `gorm:"size:256"`
	Note       string
}

// SaveAuditReview stores a produced review.
func (s *Store) SaveAuditReview(ctx context.Context, r *AuditReview) error {
	return s.with(ctx).Create(r).Error
}

// ListAuditReviews returns reviews newest first.
func (s *Store) ListAuditReviews(ctx context.Context, limit int) ([]AuditReview, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	var rs []AuditReview
	err := s.with(ctx).Order("period_end DESC, id").Limit(limit).Find(&rs).Error
	return rs, err
}

// GetAuditReview returns one review.
func (s *Store) GetAuditReview(ctx context.Context, id string) (*AuditReview, error) {
	var r AuditReview
	if err := s.with(ctx).First(&r, "id = ?", id).Error; err != nil {
		return nil, notFound(err)
	}
	return &r, nil
}

// MarkAuditReviewed records a review as done, once: false when it
// already was.
func (s *Store) MarkAuditReviewed(ctx context.Context, id, by, note string, at time.Time) (bool, error) {
	res := s.with(ctx).Model(&AuditReview{}).Where("id = ? AND reviewed_at IS NULL", id).
		Updates(map[string]any{"reviewed_at": at, "reviewed_by": by, "note": note})
	return res.RowsAffected == 1, res.Error
}

// WalkAuditBetween calls fn for every entry whose time is in [from, to),
// in sequence order, in batches.
func (s *Store) WalkAuditBetween(ctx context.Context, from, to time.Time, fn func(*AuditEntry) error) error {
	var after int64
	for {
		var batch []AuditEntry
		if err := s.with(ctx).Where("seq > ? AND time >= ? AND time < ?", after, from, to).Order("seq").Limit(500).Find(&batch).Error; err != nil {
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

// FirstAuditTime is the time of the oldest entry (zero when empty).
func (s *Store) FirstAuditTime(ctx context.Context) (time.Time, error) {
	var es []AuditEntry
	if err := s.with(ctx).Order("seq").Limit(1).Find(&es).Error; err != nil || len(es) == 0 {
		return time.Time{}, err
	}
	return es[0].Time, nil
}
