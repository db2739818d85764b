package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/store"
)

// BenchmarkIngest commits posture reports from many connections at once,
// the way the gateway does, and reports the committed rate and the p99
// of each caller's wait for its commit (what an agent's ack waits for).
// "direct" is one transaction per report (SavePosture alone, before the
// group-commit writer); "writer" goes through Writer.Commit.
// CORDON_TEST_POSTGRES runs the same on PostgreSQL.
func BenchmarkIngest(b *testing.B) {
	dbs := map[string]func(b *testing.B) string{"sqlite": func(*testing.B) string { return "" }}
	if admin := os.Getenv(testenv.PostgresEnv); admin != "" {
		dbs["postgres"] = func(b *testing.B) string { return testenv.FreshPostgres(b, admin) }
	}
	for _, name := range []string{"sqlite", "postgres"} {
		dsn, ok := dbs[name]
		if !ok {
			continue
		}
		for _, mode := range []string{"direct", "writer"} {
			b.Run(name+"/"+mode, func(b *testing.B) { benchIngest(b, dsn(b), mode == "writer", 0) })
		}
		// A server that has run a while: every device's history is full,
		// so each report also prunes the oldest.
		b.Run(name+"/writer-full-history", func(b *testing.B) { benchIngest(b, dsn(b), true, 500) })
	}
}

func benchIngest(b *testing.B, dsn string, grouped bool, history int) {
	ctx := context.Background()
	st, err := store.Open(ctx, b.TempDir(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const conns = 500
	for i := range conns {
		id := fmt.Sprintf("dev-%04d", i)
		if err := st.DB().Create(&store.Device{ID: id, Status: store.StatusActive, EnrolledAt: time.Now().UTC()}).Error; err != nil {
			b.Fatal(err)
		}
	}
	if history > 0 {
		err := st.InTx(ctx, func(tx *store.Store) error {
			for i := range conns {
				if err := tx.DB().Exec("UPDATE devices SET posture_count = ? WHERE id = ?", history, fmt.Sprintf("dev-%04d", i)).Error; err != nil {
					return err
				}
				for k := range history {
					if err := tx.DB().Exec(`INSERT INTO posture_reports (device_id, report_id, received_at, collected_at, trusted_at, clock_skew, skew_seconds, body)
						VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, fmt.Sprintf("dev-%04d", i), fmt.Sprint("old-", k), time.Now().UTC(), time.Now().UTC(),
						time.Now().UTC(), false, 0, "{}").Error; err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	commit := func(ctx context.Context, fn func(tx *store.Store) error) error { return st.InTx(ctx, fn) }
	if grouped {
		w := st.NewWriter()
		defer w.Close()
		commit = w.Commit
	}
	var (
		next atomic.Int64
		mu   sync.Mutex
		lat  = make([]time.Duration, 0, b.N)
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dev := fmt.Sprintf("dev-%04d", c)
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					return
				}
				at := time.Now().UTC().Truncate(time.Microsecond)
				state := "locked"
				if n%2 == 0 {
					state = "unlocked"
				}
				r := &store.PostureReport{DeviceID: dev, ReportID: fmt.Sprint("r", n), ReceivedAt: at, CollectedAt: at,
					TrustedAt: at, Body: `{"os":{"platform":"linux/amd64"},"lock":{"state":"` + state + `"}}`}
				t0 := time.Now()
				err := commit(ctx, func(tx *store.Store) error {
					_, err := tx.SavePosture(ctx, r, &store.LockEvent{DeviceID: dev, State: state, Source: "bench"})
					return err
				})
				d := time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "reports/s")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		// The process's CPU per report: on a shared machine the rate
		// depends on the neighbours, this much less.
		b.ReportMetric(float64(cpu.Microseconds())/float64(len(lat)), "cpu-µs/report")
	}
}
