package notify

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/server/store"
)

// Channels are the outbox's delivery channels, each a metric label
// value: every one is reported, at zero too, so that an alert on one
// that never delivered has a series to read.
var Channels = []string{"email", "webhook"}

// OutboxReader counts the undelivered part of the outbox, for the
// metrics.
type OutboxReader interface {
	Outbox(ctx context.Context) ([]store.OutboxChannel, error)
}

var (
	outboxDepthDesc = prometheus.NewDesc("cordon_notify_outbox_depth",
		"Notifications in the outbox not yet accepted by their SMTP server or webhook.", []string{"channel"}, nil)
	outboxAgeDesc = prometheus.NewDesc("cordon_notify_outbox_oldest_age_seconds",
		"Age of the oldest undelivered notification on the server's clock; 0 when none waits.", []string{"channel"}, nil)
)

// metrics are the service's delivery counters.
type metrics struct {
	deliveries *prometheus.CounterVec
	failures   *prometheus.CounterVec
}

func newMetrics() metrics {
	m := metrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_deliveries_total",
			Help: "Notifications accepted by their SMTP server (250 after DATA) or webhook (2xx)."}, []string{"channel"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_notify_failures_total",
			Help: "Delivery attempts that failed (refused, unreachable, rejected); each is retried."}, []string{"channel"}),
	}
	for _, c := range Channels {
		m.deliveries.WithLabelValues(c)
		m.failures.WithLabelValues(c)
	}
	return m
}

// counted records one delivery attempt on n's channel.
func (s *Service) counted(n *store.Notification, err error) {
	ch := n.Channel
	if ch != "webhook" {
		ch = "email"
	}
	if err != nil {
		s.metrics.failures.WithLabelValues(ch).Inc()
		return
	}
	s.metrics.deliveries.WithLabelValues(ch).Inc()
}

// Collectors are the outbox's metrics: the delivery counters, and its
// depth and oldest undelivered age read from the store at each scrape
// (one grouped query), so that every process of a scale-out reports the
// shared outbox as it stands.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.deliveries, s.metrics.failures,
		scrapemetric.Gauges(s.readOutbox, outboxDepthDesc, outboxAgeDesc)}
}

func (s *Service) readOutbox(ctx context.Context, emit scrapemetric.Emit) error {
	rows, err := s.store.Outbox(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	depth, age := map[string]float64{}, map[string]float64{}
	for _, r := range rows {
		name := r.Channel
		if name != "webhook" {
			name = "email"
		}
		depth[name] += float64(r.Depth)
		age[name] = max(age[name], now.Sub(r.Oldest).Seconds())
	}
	for _, name := range Channels {
		emit(outboxDepthDesc, depth[name], name)
		emit(outboxAgeDesc, max(age[name], 0), name)
	}
	return nil
}
