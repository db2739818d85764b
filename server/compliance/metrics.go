package compliance

import (
	"context"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cordon-mdm/cordon/internal/scrapemetric"
	"github.com/cordon-mdm/cordon/server/store"
)

// DeviceCounter counts the active devices for the fleet metric.
type DeviceCounter interface {
	DeviceCounts(ctx context.Context) ([]store.DeviceCount, error)
}

// Platforms are the platform label's values: the OS part of what agents
// enroll with (GOOS/GOARCH) and Apple MDM's three. Anything else is
// "other", so a device cannot widen the label set.
var Platforms = []string{"linux", "darwin", "windows", "android", "ios", "ipados", "macos"}

// States are the compliance label's values, as the API's
// Device.compliance.
var States = []string{StateUnknown, StateCompliant, StateNoncompliant, StateQuarantined}

var devicesDesc = prometheus.NewDesc("cordon_devices",
	"Active (not revoked) devices by platform, compliance state and online.", []string{"platform", "compliance", "online"}, nil)

// Collector reports the fleet's standing at each scrape from one grouped
// query: the compliance state last recorded (which the service keeps
// equal to the live one: a report, an incident and a grace period that
// runs out, at the next sweep, each record the change) and the online
// flag the API shows, which the gateway (or, in a scale-out, the process
// holding the connection) keeps.
func (s *Service) Collector() prometheus.Collector {
	return scrapemetric.Gauges(func(ctx context.Context, emit scrapemetric.Emit) error {
		rows, err := s.store.DeviceCounts(ctx)
		if err != nil {
			return err
		}
		sums := map[[3]string]float64{}
		for _, r := range rows {
			goos, _, _ := strings.Cut(r.Platform, "/")
			k := [3]string{scrapemetric.Bounded(goos, Platforms), scrapemetric.Bounded(r.Compliance, States), strconv.FormatBool(r.Online)}
			sums[k] += float64(r.Count)
		}
		for k, n := range sums {
			emit(devicesDesc, n, k[0], k[1], k[2])
		}
		return nil
	}, devicesDesc)
}
