package releases

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// versionDesc is the fleet's version spread as a metric, so an operator
// can alert on agents still on an old build past the agency's patch
// window (SI-2) and watch a rollout move devices from one series to the
// next.
var versionDesc = prometheus.NewDesc("cordon_agent_devices",
	"Active devices per OS and agent version (the version spread).", []string{"os", "version"}, nil)

// VersionCollector reads the spread from the store at each scrape: one
// grouped query, and never a stale figure.
func (s *Service) VersionCollector() prometheus.Collector { return versionCollector{s} }

type versionCollector struct{ s *Service }

func (c versionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- versionDesc }

func (c versionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spread, err := c.s.Spread(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(versionDesc, err)
		return
	}
	for _, v := range spread {
		ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, float64(v.Count), v.OS, v.Version)
	}
}
