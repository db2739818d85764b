package commands

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// Kinds are the command kinds the queue issues: the bounded values of
// the kind label.
var Kinds = []string{protocol.CommandLock, protocol.CommandWipe, protocol.CommandBluetoothBlock, protocol.CommandUpdate}

// finals are the statuses a command ends in.
var finals = []string{store.CommandDone, store.CommandFailed, store.CommandExpired}

// unfinished are the statuses of a command still waiting.
var unfinished = []string{store.CommandQueued, store.CommandDelivered, store.CommandHeld}

// metrics are the queue's: commands issued, ended, their time to an
// answer, and (read at scrape) the backlog of those still waiting.
type metrics struct {
	issued   *prometheus.CounterVec
	finished *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

var (
	unfinishedDesc = prometheus.NewDesc("cordon_commands_unfinished",
		"Commands not yet final, by status (queued, delivered, held), read from the store at scrape.", []string{"status"}, nil)
	oldestDesc = prometheus.NewDesc("cordon_commands_oldest_unfinished_age_seconds",
		"Age (since its issue, on the server's clock) of the oldest command in each unfinished status; 0 when none.",
		[]string{"status"}, nil)
)

func newMetrics() *metrics {
	m := &metrics{
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_commands_issued_total",
			Help: "Commands stored for delivery (queued or held), by kind."}, []string{"kind"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_commands_finished_total",
			Help: "Commands that reached a final status (done, failed, expired), by kind and status."}, []string{"kind", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cordon_command_duration_seconds",
			Help: "Time from a command's issue to its device's answer, for the commands answered.",
			// A connected device answers in well under a second; an
			// offline one when it next connects, within the 24 h TTL.
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600}},
			[]string{"kind"}),
	}
	for _, k := range Kinds {
		m.issued.WithLabelValues(k)
		for _, s := range finals {
			m.finished.WithLabelValues(k, s)
		}
	}
	return m
}

// Collectors are the queue's metrics. The backlog gauges are read from
// the store at each scrape (one grouped query), so they hold for every
// process sharing the database, not only this one.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.issued, s.metrics.finished, s.metrics.duration,
		scrapemetric.Gauges(s.readBacklog, unfinishedDesc, oldestDesc)}
}

// ended counts a command's final transition: the one place each path
// that ends a command (an answer, the expiry sweep, a redelivery that
// finds it expired) reports it, after its transaction committed.
func (m *metrics) ended(c *store.Command, status string, answeredAt time.Time) {
	m.finished.WithLabelValues(c.Kind, status).Inc()
	if status != store.CommandExpired {
		m.duration.WithLabelValues(c.Kind).Observe(answeredAt.Sub(c.CreatedAt).Seconds())
	}
}

// readBacklog reads every unfinished status, zero included, in one
// grouped query.
func (s *Service) readBacklog(ctx context.Context, emit scrapemetric.Emit) error {
	rows, err := s.store.UnfinishedCommands(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	by := map[string]store.CommandBacklog{}
	for _, r := range rows {
		by[r.Status] = r
	}
	for _, st := range unfinished {
		r, ok := by[st]
		age := 0.0
		if ok && r.Count > 0 {
			age = max(now.Sub(r.Oldest).Seconds(), 0)
		}
		emit(unfinishedDesc, float64(r.Count), st)
		emit(oldestDesc, age, st)
	}
	return nil
}
