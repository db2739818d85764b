// Package metricstest reads what a Prometheus collector holds, for the
// tests that show a metric moving on its event. testutil.ToFloat64 reads
// counters and gauges; a histogram's observation count, and every
// sample of several collectors at once, need this.
package metricstest

import (
	"strings"
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

// Samples gathers cs (through a pedantic registry, which also checks
// their descriptions) and returns each sample as "name{value,...}", the
// label values in order; a histogram gives name_count{...} and
// name_sum{...}.
func Samples(t testing.TB, cs ...prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(cs...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var vs []string
			for _, l := range m.GetLabel() {
				vs = append(vs, l.GetValue())
			}
			key := "{" + strings.Join(vs, ",") + "}"
			switch {
			case m.GetGauge() != nil:
				out[mf.GetName()+key] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				out[mf.GetName()+key] = m.GetCounter().GetValue()
			case m.GetHistogram() != nil:
				out[mf.GetName()+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+key] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}
