// Package metricstest reads what a Prometheus collector holds, for the
// tests that show a metric moving on its event. testutil.ToFloat64 reads
// counters and gauges; a histogram's observation count needs this.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// HistogramCount is the number of observations of the histogram series
// of c whose labels include all of labels (name, value pairs), summed
// over the series that match.
func HistogramCount(t testing.TB, c prometheus.Collector, labels ...string) uint64 {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("labels must be name, value pairs: %q", labels)
	}
	ch := make(chan prometheus.Metric, 64)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var n uint64
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		if pb.Histogram == nil || !matches(pb.GetLabel(), labels) {
			continue
		}
		n += pb.Histogram.GetSampleCount()
	}
	return n
}

func matches(have []*dto.LabelPair, want []string) bool {
	for i := 0; i < len(want); i += 2 {
		found := false
		for _, l := range have {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
