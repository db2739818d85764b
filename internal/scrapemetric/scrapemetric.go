// Package scrapemetric builds the Prometheus collectors whose figures are
// read at each scrape, mostly from the store: the fleet, the backlog, the
// outbox, the trail. One place bounds a read's time, so a database that
// hangs cannot hold a scrape, and reports a failed read so that the
// server's /metrics (promhttp with ContinueOnError) leaves those metrics
// out and still serves the rest, the audit-failure counter above all.
package scrapemetric

import (
	"context"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// timeout bounds one scrape's read.
const timeout = 10 * time.Second

// Emit sends one sample of desc with its label values.
type Emit func(desc *prometheus.Desc, value float64, labels ...string)

// Read sends one scrape's samples through emit, and returns the error of
// a read that failed (what it sent before that is kept).
type Read func(ctx context.Context, emit Emit) error

// Gauges is a collector of the gauges descs, read at each scrape.
func Gauges(read Read, descs ...*prometheus.Desc) prometheus.Collector {
	return collector{prometheus.GaugeValue, read, descs}
}

// Counters is a collector of counters kept in the store (a sequence that
// only grows), read at each scrape.
func Counters(read Read, descs ...*prometheus.Desc) prometheus.Collector {
	return collector{prometheus.CounterValue, read, descs}
}

type collector struct {
	kind  prometheus.ValueType
	read  Read
	descs []*prometheus.Desc
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := c.read(ctx, func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, c.kind, v, labels...)
	})
	if err != nil {
		for _, d := range c.descs {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
	}
}

// Bounded is v when set has it, else "other": a value a device sent, or
// one a later version adds, cannot widen a label's set.
func Bounded(v string, set []string) string {
	if slices.Contains(set, v) {
		return v
	}
	return "other"
}
