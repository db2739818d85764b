package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Writer commits the small writes of many callers together: reports,
// connects, disconnects, hello facts and their audit entries from every
// agent connection go into one transaction, and one fsync, per batch
// instead of one per write. SQLite's one connection commits about 700
// transactions a second on these machines whatever they hold, so a
// transaction per report caps ingest there.
//
// Commit returns only once the transaction holding the caller's write
// has committed (or the write failed): an agent acknowledged after Commit
// loses nothing on kill -9. One write that fails does not fail the
// others: the batch is rolled back and committed again without it
// (commit).
type Writer struct {
	s        *Store
	queue    chan *write
	maxBatch int
	linger   time.Duration
	timeout  time.Duration
	// batches is cordon_group_commit_batch_size: how full the writer's
	// transactions are, so an operator sees ingest batching under load.
	batches prometheus.Histogram

	mu     sync.RWMutex
	closed bool
	done   chan struct{}
}

type write struct {
	ctx  context.Context
	fn   func(tx *Store) error
	done chan error
}

// WriterOption configures a Writer.
type WriterOption func(*Writer)

// WithBatch bounds how many writes one transaction holds (default 256).
func WithBatch(n int) WriterOption { return func(w *Writer) { w.maxBatch = max(n, 1) } }

// WithLinger makes a batch wait up to d for more writes after the first
// (default 0: a batch takes what queued while the previous one committed,
// which under load is what fills it, and costs an idle server nothing).
func WithLinger(d time.Duration) WriterOption { return func(w *Writer) { w.linger = d } }

// WithBatchTimeout bounds one batch's transaction (default 30 s): a
// database that stops answering fails the batch instead of holding every
// caller forever.
func WithBatchTimeout(d time.Duration) WriterOption { return func(w *Writer) { w.timeout = d } }

// NewWriter starts a group-commit writer over s. Close stops it.
func (s *Store) NewWriter(opts ...WriterOption) *Writer {
	w := &Writer{s: s, maxBatch: 256, timeout: 30 * time.Second, done: make(chan struct{}),
		batches: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_group_commit_batch_size",
			Help:    "Writes (reports, connects, hellos, compliance states) per group-commit transaction.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}})}
	for _, o := range opts {
		o(w)
	}
	w.queue = make(chan *write, 4*w.maxBatch)
	go w.run()
	return w
}

// Collectors are the writer's metrics (README, Monitoring).
func (w *Writer) Collectors() []prometheus.Collector { return []prometheus.Collector{w.batches} }

// Commit runs fn in a transaction shared with other callers' writes and
// returns once that transaction committed: fn's error when fn failed
// (its writes are rolled back, the others' are not), ctx's when the
// caller stopped waiting (the write may still commit: send it again
// idempotently). fn must use only tx, as with Store.InTx, and must not
// keep it. tx runs every statement under the batch's context, not ctx:
// one caller giving up must not interrupt the statements of the others
// (SQLite rolls back a whole transaction on an interrupted write).
// After Close, Commit runs fn in a transaction of its own.
func (w *Writer) Commit(ctx context.Context, fn func(tx *Store) error) error {
	wr := &write{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return w.s.InTx(ctx, fn)
	}
	select {
	case w.queue <- wr:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-wr.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what is queued and stops the writer.
func (w *Writer) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]*write, 0, w.maxBatch)
	for first := range w.queue {
		batch = append(batch[:0], first)
		batch = w.gather(batch)
		w.batches.Observe(float64(len(batch)))
		w.commit(batch)
		clear(batch)
	}
}

// gather adds what is queued, and with a linger what arrives within it,
// up to the batch size.
func (w *Writer) gather(batch []*write) []*write {
	var deadline <-chan time.Time
	if w.linger > 0 {
		t := time.NewTimer(w.linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < w.maxBatch {
		select {
		case wr, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, wr)
			continue
		default:
		}
		if deadline == nil {
			return batch
		}
		select {
		case wr, ok := <-w.queue:
			if !ok {
				return batch
			}
			batch = append(batch, wr)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// errWriteFailed rolls a batch back when one of its writes failed.
var errWriteFailed = errors.New("a write of the batch failed")

// commit runs the batch in one transaction. A write that fails rolls
// the batch back and the others run again without it: failures are rare,
// and the common path then pays no savepoint per write (on SQLite each
// costs two statements and a sub-journal). After a few failures in one
// batch, or when the batch itself cannot commit, each write left is run
// alone, so only the ones at fault fail.
func (w *Writer) commit(batch []*write) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	errs := make([]error, len(batch))
	settled := make([]bool, len(batch)) // failed alone, or its caller left
	for attempt := 0; ; attempt++ {
		failed := false
		err := w.s.InTx(ctx, func(tx *Store) error {
			var audits []pendingAudit
			tx.fixed, tx.audits = ctx, &audits
			for i, wr := range batch {
				if settled[i] {
					continue
				}
				if err := wr.ctx.Err(); err != nil {
					errs[i], settled[i] = err, true // the caller left before its write began
					continue
				}
				if err := call(wr.fn, tx); err != nil {
					errs[i], settled[i], failed = err, true, true
					return errWriteFailed
				}
			}
			// Last, so that the chain's head is held only from here to
			// the commit.
			tx.audits = nil
			return appendAudits(tx.db, audits)
		})
		if err == nil {
			break
		}
		if failed && attempt < 3 {
			continue
		}
		for i, wr := range batch {
			if !settled[i] {
				errs[i] = w.alone(wr)
			}
		}
		break
	}
	for i, wr := range batch {
		wr.done <- errs[i]
	}
}

// alone runs one write in a transaction of its own.
func (w *Writer) alone(wr *write) error {
	if err := wr.ctx.Err(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(wr.ctx), w.timeout)
	defer cancel()
	return w.s.InTx(ctx, func(tx *Store) error {
		tx.fixed = ctx
		return call(wr.fn, tx)
	})
}

// call runs fn, turning a panic into its error so that one write's bug
// does not take the writer, and every waiting caller, down with it.
func call(fn func(tx *Store) error, tx *Store) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("write panicked: %v", r)
		}
	}()
	return fn(tx)
}
