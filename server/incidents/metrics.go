package incidents

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/server/store"
)

// MetricsReader counts incidents in the database for the metrics: one
// grouped query per figure at each scrape.
type MetricsReader interface {
	OpenIncidentCounts(ctx context.Context) ([]store.IncidentCount, error)
	UnreportedIncidents(ctx context.Context, createdBy time.Time) (int64, error)
}

// Categories and Severities are every value Classify gives, the metric
// labels' bounded sets; anything else in the database reads "other".
var (
	Categories = []string{"locked_minimal", "locked_extended", "unknown_minimal", "unknown_extended",
		"unlocked_momentary", "unlocked", "total_loss", "compromise"}
	Severities = []string{SeverityLow, SeverityModerate, SeverityHigh, SeverityCritical}
)

// Escalation targets, the values of cordon_incident_escalations_total's
// "to" label: what an incident is escalated to.
const (
	// EscalatedExtended: an ongoing minimal loss crossed the 15-minute
	// line and became extended (Escalate, incident.escalated).
	EscalatedExtended = "extended"
	// EscalatedCSAISO: a loss or compromise outside the United States,
	// which the policy reports to the CSA ISO (critical, and the CSA ISO
	// is among the notification's recipients).
	EscalatedCSAISO = "csa_iso"
	// EscalatedFBI: the LASO recorded that copies went to the FBI CJIS
	// ISO (IR-6), the first time the form says so.
	EscalatedFBI = "fbi_cjis_iso"
)

var (
	openDesc = prometheus.NewDesc("cordon_incidents_open",
		"Incidents not yet resolved or closed, by category and severity.", []string{"category", "severity"}, nil)
	overdueDesc = prometheus.NewDesc("cordon_incidents_overdue",
		"Open incidents past IR-6's one-hour reporting deadline with no notification accepted yet.", nil, nil)
)

// metrics are the service's event metrics.
type metrics struct {
	escalations *prometheus.CounterVec
	reportDelay prometheus.Histogram
}

func newMetrics() metrics {
	m := metrics{
		escalations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_incident_escalations_total",
			Help: "Incidents escalated: to extended at the 15-minute line, to the CSA ISO (outside the US), to the FBI CJIS ISO (copies sent)."},
			[]string{"to"}),
		reportDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_incident_report_delay_seconds",
			Help: "Time from an incident's start (control lost, as recorded) to its filing in Cordon (IR-6).",
			// One minute to three days.
			Buckets: []float64{60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 48 * 3600, 72 * 3600}}),
	}
	for _, to := range []string{EscalatedExtended, EscalatedCSAISO, EscalatedFBI} {
		m.escalations.WithLabelValues(to)
	}
	return m
}

// filed counts a new incident: its report delay, and the CSA ISO's
// escalation when it happened outside the United States.
func (s *Service) filed(inc *store.Incident) {
	s.metrics.reportDelay.Observe(max(inc.CreatedAt.Sub(inc.StartedAt), 0).Seconds())
	if inc.OutsideUS {
		s.metrics.escalations.WithLabelValues(EscalatedCSAISO).Inc()
	}
}

// Collectors are the incident metrics: the escalation counter and the
// report-delay histogram, counted as this process sees the events, and
// the open and overdue incidents, read from the store at each scrape.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.metrics.escalations, s.metrics.reportDelay,
		scrapemetric.Gauges(s.readOpen, openDesc), scrapemetric.Gauges(s.readOverdue, overdueDesc)}
}

// readOpen reports every category and severity, zero included, so that
// a panel or an alert has a series before the first incident.
func (s *Service) readOpen(ctx context.Context, emit scrapemetric.Emit) error {
	rows, err := s.store.OpenIncidentCounts(ctx)
	if err != nil {
		return err
	}
	counts := map[[2]string]float64{}
	for _, cat := range Categories {
		for _, sev := range Severities {
			counts[[2]string{cat, sev}] = 0
		}
	}
	for _, r := range rows {
		counts[[2]string{scrapemetric.Bounded(r.Category, Categories), scrapemetric.Bounded(r.Severity, Severities)}] += float64(r.Count)
	}
	for k, n := range counts {
		emit(openDesc, n, k[0], k[1])
	}
	return nil
}

// readOverdue is IR-6's overdue: ReportClock's rule (no notification
// accepted, an hour after discovery) counted in the database.
func (s *Service) readOverdue(ctx context.Context, emit scrapemetric.Emit) error {
	n, err := s.store.UnreportedIncidents(ctx, s.now().UTC().Add(-ReportDeadline))
	if err != nil {
		return err
	}
	emit(overdueDesc, float64(n))
	return nil
}
