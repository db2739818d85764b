package store

import (
	"context"
	"errors"
	"slices"
	"strings"

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
//
// In a Writer's batch the entry is queued instead and appended with the
// batch's others when its writes are done, in the same transaction: e's
// Seq, PrevHash and Hash are set only then.
func (s *Store) AppendAudit(ctx context.Context, e *AuditEntry, seal func(*AuditEntry)) error {
	if s.audits != nil {
		*s.audits = append(*s.audits, pendingAudit{e, seal})
		return nil
	}
	return s.inTxOrNot(ctx, func(tx *gorm.DB) error { return appendAudits(tx, []pendingAudit{{e, seal}}) })
}

// pendingAudit is an entry waiting for its place in the chain.
type pendingAudit struct {
	e    *AuditEntry
	seal func(*AuditEntry)
}

// queuedAudits is how many entries the batch holds (0 outside one).
func (s *Store) queuedAudits() int {
	if s.audits == nil {
		return 0
	}
	return len(*s.audits)
}

// auditRowsPerInsert bounds one INSERT's parameters (ten a row) far
// below SQLite's and PostgreSQL's limits.
const auditRowsPerInsert = 100

// appendAudits chains es after the head in one move of the head row:
// every process's audited writes meet at that row, so it is taken once
// per batch and held only for these statements and the commit after.
func appendAudits(tx *gorm.DB, es []pendingAudit) error {
	if len(es) == 0 {
		return nil
	}
	// The UPDATE comes first so the lock is held before the head is
	// read; RETURNING reads it in the same statement, with the hash
	// still the previous entry's.
	var head AuditHead
	if err := tx.Raw("UPDATE audit_heads SET seq = seq + ? WHERE id = 1 RETURNING id, seq, hash", len(es)).Scan(&head).Error; err != nil {
		return err
	}
	if head.ID != 1 {
		return errors.New("audit head row missing")
	}
	seq, prev := head.Seq-int64(len(es)), head.Hash
	for _, p := range es {
		seq++
		p.e.Seq, p.e.PrevHash = seq, prev
		p.seal(p.e)
		prev = p.e.Hash
	}
	for rows := range slices.Chunk(es, auditRowsPerInsert) {
		var q strings.Builder
		q.WriteString("INSERT INTO audit_entries (seq, time, actor, source, action, target, outcome, details, prev_hash, hash) VALUES ")
		args := make([]any, 0, 10*len(rows))
		for i, p := range rows {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			e := p.e
			args = append(args, e.Seq, e.Time, e.Actor, e.Source, e.Action, e.Target, e.Outcome, e.Details, e.PrevHash, e.Hash)
		}
		if err := tx.Exec(q.String(), args...).Error; err != nil {
			return err
		}
	}
	return tx.Exec("UPDATE audit_heads SET hash = ? WHERE id = 1", prev).Error
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
