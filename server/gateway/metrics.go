package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Handshake outcomes, the values of cordon_gateway_handshakes_total's
// outcome label: a bounded set, every one present from the start.
const (
	OutcomeAccepted         = "accepted"          // a full handshake, the channel may open
	OutcomeResumed          = "resumed"           // a resumed TLS session
	OutcomeRefused          = "refused"           // a certificate presented and refused
	OutcomeAdmissionLimited = "admission_limited" // turned away by admission control, unread
	OutcomeFailed           = "failed"            // timeouts, resets, no certificate, bad records
)

// metrics are the gateway's own: the handshakes it ran and the reports
// it committed (README, Monitoring).
type metrics struct {
	handshakes    *prometheus.CounterVec
	handshakeTime prometheus.Histogram
	reports       prometheus.Counter
	commitTime    prometheus.Histogram
}

func newMetrics() *metrics {
	m := &metrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cordon_gateway_handshakes_total",
			Help: "Agent TLS handshakes by outcome (accepted, resumed, refused, admission_limited, failed)."}, []string{"outcome"}),
		handshakeTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_gateway_handshake_duration_seconds",
			Help:    "Time of the agent TLS handshakes that completed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}), // 1 ms .. 8 s; the handshake timeout is 10 s
		reports: prometheus.NewCounter(prometheus.CounterOpts{Name: "cordon_reports_ingested_total",
			Help: "Posture reports durably committed (a report sent again is not counted twice)."}),
		// From the frame's receipt to the commit its ack waits for: what
		// a slow database, or a writer queue, costs every agent.
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cordon_report_commit_duration_seconds",
			Help:    "Time from a posture report's receipt at the server to its durable commit (the agent's ack waits for it).",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}}),
	}
	// Zero from the start: a rate over an absent series is no alert.
	for _, o := range []string{OutcomeAccepted, OutcomeResumed, OutcomeRefused, OutcomeAdmissionLimited, OutcomeFailed} {
		m.handshakes.WithLabelValues(o)
	}
	return m
}

// Collectors are the gateway's metrics, and those of the group-commit
// writer it was given (WithWriter), which it owns and closes.
func (g *Gateway) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{g.metrics.handshakes, g.metrics.handshakeTime, g.metrics.reports, g.metrics.commitTime}
	if g.writer != nil {
		cs = append(cs, g.writer.Collectors()...)
	}
	return cs
}

// handshakeDone counts one handshake that ran (admission let it in).
func (m *metrics) handshakeDone(err error, resumed bool, took time.Duration) {
	if err != nil {
		m.handshakes.WithLabelValues(handshakeOutcome(err)).Inc()
		return
	}
	m.handshakeTime.Observe(took.Seconds())
	if resumed {
		m.handshakes.WithLabelValues(OutcomeResumed).Inc()
		return
	}
	m.handshakes.WithLabelValues(OutcomeAccepted).Inc()
}

// handshakeOutcome tells a refused certificate (Cordon's own checks, or
// crypto/tls's against the device CA: unknown issuer, expired, wrong
// usage) from every other failure.
func handshakeOutcome(err error) string {
	var (
		ref *refusal
		cve *tls.CertificateVerificationError
		uae x509.UnknownAuthorityError
		cie x509.CertificateInvalidError
	)
	if errors.As(err, &ref) || errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &cie) {
		return OutcomeRefused
	}
	return OutcomeFailed
}
