package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
)

// TestKill9MidIngestLosesNoAcknowledgedReport kills the server with -9
// while many agents report at once, without freezing it first: their
// reports are committed together in the group-commit writer's batches,
// and the kill lands in the middle of one. Every report acknowledged
// before the kill is in the database.
func TestKill9MidIngestLosesNoAcknowledgedReport(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		const agents = 16
		p := startServer(t, buildServer(t, ""), dsn(t))
		out, err := exec.Command(p.bin, "token", "create", "--data", p.data, "--uses", strconv.Itoa(agents)).Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		token := strings.TrimSpace(string(out))
		fp, err := pki.ReadRootFingerprint(p.data)
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		defer func() { cancel(); wg.Wait() }()
		for range agents {
			dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent")}
			if _, err := enrollment.Enroll(ctx, enrollment.Request{Server: "https://" + p.listen, Token: token,
				Fingerprint: fp, State: dir, Facts: posture.Facts(ctx, "test"), FIPS: fips.Default()}); err != nil {
				t.Fatal(err)
			}
			a, err := agent.New(dir, agent.WithReportInterval(20*time.Millisecond), agent.WithPollInterval(time.Hour),
				agent.WithBackoff(50*time.Millisecond, time.Second), agent.WithObserver(l.observer()))
			if err != nil {
				t.Fatal(err)
			}
			wg.Go(func() { a.Run(ctx) })
		}
		testenv.Eventually(t, 90*time.Second, "reports acknowledged from every agent at once", func() bool {
			acked, _ := l.snapshot()
			return len(acked) >= 20*agents
		})
		// Everything acknowledged so far was acknowledged before the kill.
		ackedAtKill, _ := l.snapshot()
		p.signal(syscall.SIGKILL)
		p.cmd.Wait()
		cancel()
		wg.Wait()
		stored := storedReports(t, p.data, p.dsn)
		lost := 0
		for _, id := range ackedAtKill {
			if !stored[id] {
				lost++
				t.Errorf("report %s was acknowledged but is not in the database after kill -9", id)
			}
		}
		_, unacked := l.snapshot()
		t.Logf("at kill: %d acknowledged (%d lost), %d sent and never acknowledged", len(ackedAtKill), lost, len(unacked))
	})
}
