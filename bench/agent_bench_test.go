//go:build linux

package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/keystore"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/server"
)

func cpuTime() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + children.Utime.Nano() + children.Stime.Nano())
}

// BenchmarkCollection is the CPU a posture collection costs on this host,
// the tools it runs (apt-get -s, cryptsetup) included: "full" reads every
// section, "poll" is the 5-second lock poll with the rest cached.
func BenchmarkCollection(b *testing.B) {
	ctx := context.Background()
	b.Run("full", func(b *testing.B) {
		start := cpuTime()
		for range b.N {
			sys := posture.NewSystem("bench")
			if _, err := sys.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			sys.Close()
		}
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/collection")
	})
	b.Run("poll", func(b *testing.B) {
		sys := posture.NewSystem("bench")
		defer sys.Close()
		sys.Refresh(ctx) // fills the caches
		start := cpuTime()
		b.ResetTimer()
		for range b.N {
			if _, err := sys.Collect(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-start).Microseconds())/1000/float64(b.N), "cpu-ms/collection")
	})
}

// BenchmarkAgentHour runs the agent binary for an hour-equivalent of
// cycles (720 lock polls, 4 full collections, 60 Bluetooth reads,
// reports on change) against a real server, then reads its memory.
func BenchmarkAgentHour(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	srv, err := server.New(ctx, server.WithDataDir(filepath.Join(dir, "server")), server.WithListen("127.0.0.1:0"),
		server.WithAgentListen("127.0.0.1:0"), server.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		srv.Shutdown(ctx)
		b.Fatal(err)
	}
	defer srv.Shutdown(ctx)
	adm, err := server.OpenAdmin(ctx, filepath.Join(dir, "server"), "")
	if err != nil {
		b.Fatal(err)
	}
	tok, _, err := adm.CreateToken(ctx, time.Hour, 1, "")
	adm.Close()
	if err != nil {
		b.Fatal(err)
	}
	st := state.Dir{Path: filepath.Join(dir, "agent"), Keys: keystore.FileKind}
	if _, err := enrollment.Enroll(ctx, enrollment.Request{Server: srv.ConsoleURL(), Token: tok,
		Fingerprint: srv.CA.RootFingerprint(), State: st, Facts: posture.Facts(ctx, "bench"), FIPS: fips.Default()}); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "agentproc")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/cordon-mdm/cordon/bench/agentproc").CombinedOutput(); err != nil {
		b.Fatalf("build agentproc: %v\n%s", err, out)
	}
	b.ResetTimer()
	var rss, hwm, cpu, reports float64
	for range b.N {
		out, err := exec.Command(bin, "-state", st.Path).Output()
		if err != nil {
			b.Fatalf("agentproc: %v", err)
		}
		var r, h, c, n int64
		if _, err := fmt.Sscanf(string(out), "AGENT rss_kb=%d hwm_kb=%d cpu_ms=%d reports=%d", &r, &h, &c, &n); err != nil {
			b.Fatalf("agentproc said %q: %v", out, err)
		}
		rss, hwm, cpu, reports = float64(r)/1024, float64(h)/1024, float64(c), float64(n)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(rss, "agent-RSS-MB")
	b.ReportMetric(hwm, "agent-peak-RSS-MB")
	b.ReportMetric(cpu, "agent-cpu-ms/hour")
	b.ReportMetric(reports, "reports/hour")
}
