package commands

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cordon-mdm/cordon/internal/metricstest"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// backlog is what a scrape reads of the unfinished commands.
func backlog(t *testing.T, s *Service, want string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collectors()...)
	err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"cordon_commands_unfinished", "cordon_commands_oldest_unfinished_age_seconds")
	if err != nil {
		t.Fatal(err)
	}
}

const backlogHelp = `# HELP cordon_commands_oldest_unfinished_age_seconds Age (since its issue, on the server's clock) of the oldest command in each unfinished status; 0 when none.
# TYPE cordon_commands_oldest_unfinished_age_seconds gauge
# HELP cordon_commands_unfinished Commands not yet final, by status (queued, delivered, held), read from the store at scrape.
# TYPE cordon_commands_unfinished gauge
`

// Each path that ends a command counts it once under its final status:
// an answer (timed from the issue), the expiry sweep, and a redelivery
// that finds it expired; the backlog is read from the store.
func TestCommandMetricsFollowTheirCommands(t *testing.T) {
	ctx := context.Background()
	s, _, _ := newService(t)
	t0 := time.Now().UTC().Truncate(time.Second)
	clock := t0
	s.now = func() time.Time { return clock }
	if n := testutil.CollectAndCount(s.metrics.finished); n != len(Kinds)*len(finals) {
		t.Fatalf("%d finished series before any command, want every kind and final status", n)
	}
	backlog(t, s, backlogHelp+`cordon_commands_oldest_unfinished_age_seconds{status="delivered"} 0
cordon_commands_oldest_unfinished_age_seconds{status="held"} 0
cordon_commands_oldest_unfinished_age_seconds{status="queued"} 0
cordon_commands_unfinished{status="delivered"} 0
cordon_commands_unfinished{status="held"} 0
cordon_commands_unfinished{status="queued"} 0
`)
	lock := func() *store.Command {
		c, err := s.Issue(ctx, Request{DeviceID: "d1", Kind: protocol.CommandLock, Actor: "user:it@pd.example", Role: "it-admin", Source: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	answered := lock()
	if n := testutil.ToFloat64(s.metrics.issued.WithLabelValues(protocol.CommandLock)); n != 1 {
		t.Fatalf("issued %v locks, want 1", n)
	}
	clock = t0.Add(90 * time.Second)
	backlog(t, s, backlogHelp+`cordon_commands_oldest_unfinished_age_seconds{status="delivered"} 0
cordon_commands_oldest_unfinished_age_seconds{status="held"} 0
cordon_commands_oldest_unfinished_age_seconds{status="queued"} 90
cordon_commands_unfinished{status="delivered"} 0
cordon_commands_unfinished{status="held"} 0
cordon_commands_unfinished{status="queued"} 1
`)
	res := protocol.CommandResult{Ref: answered.ID, Status: protocol.ResultDone}
	for range 2 { // the answer sent again changes nothing
		if _, err := s.Result(ctx, "d1", "10.0.0.7:5000", res); err != nil {
			t.Fatal(err)
		}
	}
	if n := testutil.ToFloat64(s.metrics.finished.WithLabelValues(protocol.CommandLock, store.CommandDone)); n != 1 {
		t.Fatalf("finished done %v, want 1", n)
	}
	if n := metricstest.HistogramCount(t, s.metrics.duration, "kind", protocol.CommandLock); n != 1 {
		t.Fatalf("%d answers timed, want 1", n)
	}

	lock()
	redelivered := lock()
	clock = clock.Add(25 * time.Hour) // past the 24 h TTL
	s.Ready(ctx, "d1")                // redelivery finds both expired first
	s.Expire(ctx)                     // nothing left to expire
	if n := testutil.ToFloat64(s.metrics.finished.WithLabelValues(protocol.CommandLock, store.CommandExpired)); n != 2 {
		t.Fatalf("finished expired %v, want 2", n)
	}
	if got, _ := s.store.GetCommand(ctx, redelivered.ID); got.Status != store.CommandExpired {
		t.Fatalf("redelivered command is %s", got.Status)
	}
	third := lock()
	clock = clock.Add(25 * time.Hour)
	s.Expire(ctx)
	if got, _ := s.store.GetCommand(ctx, third.ID); got.Status != store.CommandExpired {
		t.Fatalf("swept command is %s", got.Status)
	}
	if n := testutil.ToFloat64(s.metrics.finished.WithLabelValues(protocol.CommandLock, store.CommandExpired)); n != 3 {
		t.Fatalf("finished expired %v, want 3", n)
	}
	if n := metricstest.HistogramCount(t, s.metrics.duration); n != 1 {
		t.Fatalf("%d commands timed; an expiry is no answer", n)
	}
	if n := testutil.ToFloat64(s.metrics.issued.WithLabelValues(protocol.CommandLock)); n != 4 {
		t.Fatalf("issued %v locks, want 4", n)
	}
}
