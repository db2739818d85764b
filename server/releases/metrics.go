package releases

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
)

// versionDesc is the fleet's version spread as a metric, so an operator
// can alert on agents still on an old build past the agency's patch
// window (SI-2) and watch a rollout move devices from one series to the
// next.
var versionDesc = prometheus.NewDesc("cordon_agent_devices",
	"Active devices per OS and agent version (the version spread).", []string{"os", "version"}, nil)

// VersionCollector reads the spread from the store at each scrape: one
// grouped query, and never a stale figure.
func (s *Service) VersionCollector() prometheus.Collector {
	return scrapemetric.Gauges(func(ctx context.Context, emit scrapemetric.Emit) error {
		spread, err := s.Spread(ctx)
		if err != nil {
			return err
		}
		for _, v := range spread {
			emit(versionDesc, float64(v.Count), v.OS, v.Version)
		}
		return nil
	}, versionDesc)
}
