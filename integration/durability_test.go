package integration

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	"github.com/cordon-mdm/cordon/server/store"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type serverProc struct {
	t                   *testing.T
	bin, data, dsn      string
	listen, agentListen string
	env                 []string // added to the test's environment
	cmd                 *exec.Cmd
	logf                *os.File
}

// startServer runs bin serve on fresh ports and data dir, with env added;
// its log is shown when the test fails and the process is killed at the
// end (whichever process p runs then: tests restart it).
func startServer(t *testing.T, bin, dsn string, env ...string) *serverProc {
	t.Helper()
	logf, err := os.Create(filepath.Join(t.TempDir(), "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &serverProc{t: t, bin: bin, data: t.TempDir(), dsn: dsn, listen: freePort(t), agentListen: freePort(t), logf: logf, env: env}
	p.start()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(p.logf.Name())
			t.Logf("server log:\n%s", b)
		}
		p.cmd.Process.Kill()
		p.cmd.Wait()
	})
	return p
}

func (p *serverProc) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "serve", "--data", p.data, "--listen", p.listen, "--agent-listen", p.agentListen, "--database", p.dsn)
	p.cmd.Env = append(os.Environ(), p.env...)
	p.cmd.Stderr = p.logf
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	client := &http.Client{Timeout: time.Second, Transport: testenv.Validating(p.t, &http.Transport{TLSClientConfig: insecureForHealth()})}
	testenv.Eventually(p.t, 30*time.Second, "server healthy", func() bool {
		resp, err := client.Get("https://" + p.listen + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func (p *serverProc) signal(sig syscall.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

type ledger struct {
	mu          sync.Mutex
	sent, acked map[string]bool
}

func (l *ledger) observer() agent.Observer {
	return agent.Observer{
		Sent:  func(id string) { l.mu.Lock(); l.sent[id] = true; l.mu.Unlock() },
		Acked: func(id string) { l.mu.Lock(); l.acked[id] = true; l.mu.Unlock() },
	}
}

func (l *ledger) snapshot() (acked, unacked []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range l.sent {
		if l.acked[id] {
			acked = append(acked, id)
		} else {
			unacked = append(unacked, id)
		}
	}
	return
}

func storedReports(t *testing.T, data, dsn string) map[string]bool {
	t.Helper()
	st, err := store.Open(context.Background(), data, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	if err := st.DB().Model(&store.PostureReport{}).Pluck("report_id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// TestKill9LosesNoAcknowledgedReport kills the server process while
// agents report. Every report the server acknowledged must be in the
// database; every report sent but not acknowledged must arrive after the
// agents reconnect.
func TestKill9LosesNoAcknowledgedReport(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		p := startServer(t, buildServer(t, ""), dsn(t))
		// Local admin works beside a running serve.
		out, err := exec.Command(p.bin, "token", "create", "--data", p.data, "--uses", "3").Output()
		if err != nil {
			t.Fatalf("token create beside serve: %v", err)
		}
		token := strings.TrimSpace(string(out))
		fp, err := pki.ReadRootFingerprint(p.data)
		if err != nil {
			t.Fatal(err)
		}
		l := &ledger{sent: map[string]bool{}, acked: map[string]bool{}}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var agents []*agent.Agent
		for range 3 {
			dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent")}
			if _, err := enrollment.Enroll(ctx, enrollment.Request{Server: "https://" + p.listen, Token: token,
				Fingerprint: fp, State: dir, Facts: posture.Facts(ctx, "test"), FIPS: fips.Default()}); err != nil {
				t.Fatal(err)
			}
			a, err := agent.New(dir, agent.WithReportInterval(40*time.Millisecond), agent.WithPollInterval(time.Hour),
				agent.WithBackoff(50*time.Millisecond, time.Second), agent.WithObserver(l.observer()))
			if err != nil {
				t.Fatal(err)
			}
			agents = append(agents, a)
			wg.Add(1)
			go func() { defer wg.Done(); a.Run(ctx) }()
		}
		defer func() { cancel(); wg.Wait() }()

		testenv.Eventually(t, 60*time.Second, "reports acknowledged", func() bool {
			acked, _ := l.snapshot()
			return len(acked) >= 15
		})
		// Freeze the server so reports pile up sent but unacknowledged,
		// then kill it without warning.
		p.signal(syscall.SIGSTOP)
		time.Sleep(400 * time.Millisecond)
		ackedAtKill, unackedAtKill := l.snapshot()
		p.signal(syscall.SIGKILL)
		p.cmd.Wait()
		if len(unackedAtKill) == 0 {
			t.Fatal("no report was in flight at the kill; the test proves nothing")
		}
		stored := storedReports(t, p.data, p.dsn)
		for _, id := range ackedAtKill {
			if !stored[id] {
				t.Fatalf("report %s was acknowledged but is not in the database after kill -9", id)
			}
		}
		t.Logf("at kill: %d acknowledged, %d sent but unacknowledged", len(ackedAtKill), len(unackedAtKill))

		p.start()
		// Every report in flight at the kill is sent again and acknowledged.
		// Wait for exactly those: waiting for empty spools while the agents
		// keep reporting every 40ms can outlast the per-device history
		// limit on a loaded machine, which then prunes the very reports
		// this test looks for.
		testenv.Eventually(t, 2*time.Minute, "the reports in flight at the kill acknowledged after reconnect", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			for _, id := range unackedAtKill {
				if !l.acked[id] {
					return false
				}
			}
			return true
		})
		cancel()
		wg.Wait()
		p.signal(syscall.SIGTERM)
		p.cmd.Wait()
		stored = storedReports(t, p.data, p.dsn)
		for _, id := range append(ackedAtKill, unackedAtKill...) {
			if !stored[id] {
				t.Fatalf("report %s is missing after reconnect", id)
			}
		}
		acked, _ := l.snapshot()
		for _, id := range acked {
			if !stored[id] {
				t.Fatalf("acknowledged report %s missing", id)
			}
		}
		st, err := store.Open(context.Background(), p.data, p.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		conns, err := st.ListAudit(context.Background(), store.AuditQuery{Action: "device.connected"})
		if err != nil {
			t.Fatal(err)
		}
		if len(conns) < 6 {
			t.Fatalf("%d device.connected entries; want the 3 agents to have reconnected", len(conns))
		}
	})
}
