package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves the metric catalogue (README, Monitoring). Each
// service owns its metrics and hands them over as collectors; this only
// gathers them into one registry, so nothing here is global.
func (s *Server) metricsHandler() http.Handler {
	hub := s.hub
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "cordon_gateway_connections", Help: "Live agent connections."},
			func() float64 { return float64(hub.Count()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "cordon_audit_write_failures_total",
			Help: "Audit entries that could not be written (AU-5); each refused its change."},
			func() float64 { return float64(s.Audit.Failures()) }),
		s.Releases.VersionCollector())
	// The state read from the store at each scrape: devices, incidents,
	// the outbox and certificate expiry.
	reg.MustRegister(s.Compliance.Collector(), s.certCollector())
	reg.MustRegister(s.Incidents.Collectors()...)
	reg.MustRegister(s.Notify.Collectors()...)
	// The services' event metrics: handshakes, reports and the group
	// commit; commands; the trail; guess limiters; request times.
	reg.MustRegister(s.gw.Collectors()...)
	reg.MustRegister(s.Commands.Collectors()...)
	reg.MustRegister(s.Audit.Collectors()...)
	reg.MustRegister(s.AuditAnchor.Collectors()...)
	reg.MustRegister(s.keyGuesses.Collectors()...)
	reg.MustRegister(s.enrollGuesses.Collectors()...)
	reg.MustRegister(s.requests.Collectors()...)
	// A metric read from the store that fails (the database is down) is
	// left out, and the rest served: the audit-failure counter matters
	// most exactly then.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
