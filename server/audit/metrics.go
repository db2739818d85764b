package audit

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/server/store"
)

var (
	entriesDesc = prometheus.NewDesc("cordon_audit_entries_total",
		"Audit entries written: the chain's head sequence number, read from the store at scrape (the same figure from every process sharing the database).",
		nil, nil)
	checkpointAgeDesc = prometheus.NewDesc("cordon_audit_checkpoint_age_seconds",
		"Seconds since the newest signed audit checkpoint (AU-9); absent until the first one is signed.", nil, nil)
)

// Collectors are the trail's metrics. The entry count is the chain's
// head, read at scrape: it counts what committed, never an entry whose
// transaction rolled back or a batch's retry, and it survives restarts.
func (l *Log) Collectors() []prometheus.Collector {
	return []prometheus.Collector{scrapemetric.Counters(func(ctx context.Context, emit scrapemetric.Emit) error {
		seq, _, err := l.store.AuditHeadSeq(ctx)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		emit(entriesDesc, float64(seq))
		return nil
	}, entriesDesc)}
}

// Collectors are the anchor's metrics: the age of the newest checkpoint
// in the store, on the anchor's clock. Before the first checkpoint there
// is no sample at all, rather than an age that would alert on a new
// server (or a zero that would hide one that never signs).
func (a *Anchor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{scrapemetric.Gauges(func(ctx context.Context, emit scrapemetric.Emit) error {
		cp, err := a.st.LatestAuditCheckpoint(ctx)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		emit(checkpointAgeDesc, max(a.now().Sub(cp.Time).Seconds(), 0))
		return nil
	}, checkpointAgeDesc)}
}
