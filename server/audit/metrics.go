package audit

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	return []prometheus.Collector{entriesCollector{l.store}}
}

type entriesCollector struct{ st Store }

func (c entriesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- entriesDesc }

func (c entriesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	seq, _, err := c.st.AuditHeadSeq(ctx)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		ch <- prometheus.NewInvalidMetric(entriesDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.CounterValue, float64(seq))
}

// Collectors are the anchor's metrics: the age of the newest checkpoint
// in the store, on the anchor's clock. Before the first checkpoint there
// is no sample at all, rather than an age that would alert on a new
// server (or a zero that would hide one that never signs).
func (a *Anchor) Collectors() []prometheus.Collector {
	return []prometheus.Collector{checkpointAgeCollector{a}}
}

type checkpointAgeCollector struct{ a *Anchor }

func (c checkpointAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- checkpointAgeDesc }

func (c checkpointAgeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cp, err := c.a.st.LatestAuditCheckpoint(ctx)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return
	case err != nil:
		ch <- prometheus.NewInvalidMetric(checkpointAgeDesc, err)
		return
	}
	age := max(c.a.now().Sub(cp.Time).Seconds(), 0)
	ch <- prometheus.MustNewConstMetric(checkpointAgeDesc, prometheus.GaugeValue, age)
}
