package scrapemetric

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	depth = prometheus.NewDesc("test_depth", "Depth.", []string{"channel"}, nil)
	seq   = prometheus.NewDesc("test_entries_total", "Entries.", nil, nil)
)

func TestGaugesReadAtEachScrape(t *testing.T) {
	n := 0.0
	c := Gauges(func(ctx context.Context, emit Emit) error {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("a read runs without a deadline: a hung database would hold the scrape")
		}
		n++
		emit(depth, n, "email")
		emit(depth, 0, "webhook")
		return nil
	}, depth)
	want := "# HELP test_depth Depth.\n# TYPE test_depth gauge\ntest_depth{channel=\"email\"} 1\ntest_depth{channel=\"webhook\"} 0\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	want = strings.Replace(want, "} 1", "} 2", 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatalf("the second scrape did not read again: %v", err)
	}
}

func TestCountersAreCounters(t *testing.T) {
	c := Counters(func(_ context.Context, emit Emit) error { emit(seq, 42); return nil }, seq)
	want := "# HELP test_entries_total Entries.\n# TYPE test_entries_total counter\ntest_entries_total 42\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

// TestAFailedReadLeavesTheRestServed: the failing collector's metrics are
// reported as an error for the scrape, and a healthy collector beside it
// is still gathered.
func TestAFailedReadLeavesTheRestServed(t *testing.T) {
	reg := prometheus.NewRegistry()
	down := errors.New("database is down")
	reg.MustRegister(
		Gauges(func(context.Context, Emit) error { return down }, depth),
		Counters(func(_ context.Context, emit Emit) error { emit(seq, 7); return nil }, seq))
	families, err := reg.Gather()
	if err == nil || !strings.Contains(err.Error(), "database is down") {
		t.Fatalf("Gather err = %v, want the read's error", err)
	}
	if len(families) != 1 || families[0].GetName() != "test_entries_total" || families[0].GetMetric()[0].GetCounter().GetValue() != 7 {
		t.Fatalf("gathered %v, want only the healthy counter", families)
	}
}

func TestBounded(t *testing.T) {
	set := []string{"email", "webhook"}
	for v, want := range map[string]string{"email": "email", "webhook": "webhook", "sms": "other", "": "other"} {
		if got := Bounded(v, set); got != want {
			t.Errorf("Bounded(%q) = %q, want %q", v, got, want)
		}
	}
}
