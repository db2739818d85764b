package integration

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/localapi"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
)

type incidentJSON struct {
	ID            string `json:"id"`
	DeviceID      string `json:"device_id"`
	Kind          string `json:"kind"`
	Detection     string `json:"detection"`
	DurationClass string `json:"duration_class"`
	Location      string `json:"location"`
	Reporter      string `json:"reporter"`
	Quarantined   bool   `json:"quarantined"`
}

func incidentsOf(e *testenv.Env, key string) []incidentJSON {
	var list struct {
		Incidents []incidentJSON `json:"incidents"`
	}
	e.Do("GET", "/api/v1/incidents", key, nil, &list)
	return list.Incidents
}

// TestAgentReportSpooledWhileOffline: a report filed while the agent
// cannot reach the server is on disk at once, goes on the next
// connection, and opens exactly one incident; `cordon-agent report` files
// through the running agent and is refused for a device of another owner.
func TestAgentReportSpooledWhileOffline(t *testing.T) {
	e := testenv.New(t, "")
	laso := e.APIKey("laso")
	dir := e.MustEnroll()
	stranger := e.StartAgent(e.MustEnroll()) // enrolled without an owner: nobody's device but its own

	offline, err := agent.New(dir, agent.WithCollector(testenv.OSOnly{}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := offline.Report(protocol.IncidentReport{Kind: "loss_of_control", LockState: "locked",
		StartedAt: time.Now().Add(-5 * time.Minute), Location: "county courthouse, room 2"})
	if err != nil {
		t.Fatal(err)
	}
	if got := offline.Status().Reports[0]; got.ID != id || got.State != "spooled" {
		t.Fatalf("offline report %+v", got)
	}
	if n := len(incidentsOf(e, laso)); n != 0 {
		t.Fatalf("%d incidents before the agent connected", n)
	}

	a := e.StartAgent(dir) // a fresh process's agent: only the disk carries the report
	testenv.Eventually(t, 15*time.Second, "the spooled report filed", func() bool {
		return a.WaitFiled(context.Background(), id).State == "filed"
	})
	incs := incidentsOf(e, laso)
	if len(incs) != 1 || incs[0].DeviceID != a.DeviceID() || incs[0].Location != "county courthouse, room 2" ||
		incs[0].ID != a.WaitFiled(context.Background(), id).Incident {
		t.Fatalf("incidents %+v", incs)
	}

	// The server checks ownership itself, whatever an agent sends.
	rid, err := a.Report(protocol.IncidentReport{DeviceID: stranger.DeviceID(), Kind: "total_loss", StartedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	got := a.WaitFiled(wctx, rid)
	wcancel()
	if got.State != "refused" || !strings.Contains(got.Error, "not another enrolled device of this device's owner") {
		t.Fatalf("report about another owner's device: %+v", got)
	}

	sock := serveLocalAPI(t, e, a.Agent)
	ctx := context.Background()
	bin := buildBinary(t, "cordon-agent", "")
	out, err := exec.Command(bin, "report", "--socket", sock, "--device", stranger.DeviceID(), "--kind", "total_loss", "--started", "1h").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not one of this owner's devices") {
		t.Fatalf("report for another owner's device: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "report", "--socket", sock, "--kind", "compromise", "--lock-state", "unlocked",
		"--started", "30m", "--ended", "10m", "--location", "evidence room", "--description", "USB device found plugged in").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"state": "filed"`) {
		t.Fatalf("cordon-agent report: %v\n%s", err, out)
	}
	testenv.Eventually(t, 5*time.Second, "the second incident", func() bool { return len(incidentsOf(e, laso)) == 2 })
	if got := incidentsOf(e, laso)[0]; got.Kind != "compromise" || !strings.Contains(got.Reporter, "via device:"+a.DeviceID()) || !got.Quarantined {
		t.Fatalf("CLI incident %+v", got)
	}
	// A Bluetooth approval request from the device, through the agent's
	// channel: pending, with the local user as requester.
	out, err = exec.Command(bin, "bt", "request", "--socket", sock, "--address", "aa:bb:cc:dd:ee:07", "--name", "evidence camera",
		"--reason", "transfers photos at scenes", "--supervisor", "sgt-ortiz").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"state": "filed"`) || !strings.Contains(string(out), `"request"`) {
		t.Fatalf("cordon-agent bt request: %v\n%s", err, out)
	}
	var reqs struct {
		Requests []struct{ Address, Requester, Supervisor, Status, DeviceID string } `json:"requests"`
	}
	e.Do("GET", "/api/v1/bluetooth/requests", laso, nil, &reqs)
	if len(reqs.Requests) != 1 || reqs.Requests[0].Address != "AA:BB:CC:DD:EE:07" || reqs.Requests[0].Status != "pending" ||
		reqs.Requests[0].Supervisor != "apikey:sgt-ortiz" || !strings.Contains(reqs.Requests[0].Requester, "via device:"+a.DeviceID()) {
		t.Fatalf("requests %+v", reqs.Requests)
	}

	// The quarantine reaches the agent, and so the tray.
	testenv.Eventually(t, 5*time.Second, "the agent told it is quarantined", func() bool {
		st, err := localapi.Client{Socket: sock}.Status(ctx)
		return err == nil && st.Compliance == protocol.ComplianceQuarantined
	})
}

// lockOnly reports a fixed lock state.
type lockOnly struct{ state string }

func (l lockOnly) Collect(ctx context.Context) (protocol.Posture, error) {
	p, err := testenv.OSOnly{}.Collect(ctx)
	p.Lock = &protocol.LockState{State: l.state, Provenance: protocol.Provenance{Source: "test"}}
	return p, err
}

// TestServerDetectsSilentUnlockedAgent: real agents, one last seen
// unlocked and one locked, go silent; 15 minutes later (the incident
// clock moved on) the unlocked one has a server-detected incident and is
// quarantined, the locked one has none.
func TestServerDetectsSilentUnlockedAgent(t *testing.T) {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := testenv.New(t, "", server.WithIncidentClock(clock), server.WithSweepInterval(100*time.Millisecond))
	laso := e.APIKey("laso")
	unlocked := e.StartAgent(e.MustEnroll(), agent.WithCollector(lockOnly{"unlocked"}))
	locked := e.StartAgent(e.MustEnroll(), agent.WithCollector(lockOnly{"locked"}))
	for _, a := range []*testenv.Agent{unlocked, locked} {
		waitOnline(t, e, laso, a.DeviceID())
		testenv.Eventually(t, 10*time.Second, "a lock reading stored", func() bool {
			var d struct {
				Posture struct {
					Lock *struct{ State string } `json:"lock"`
				} `json:"posture"`
			}
			e.Do("GET", "/api/v1/devices/"+a.DeviceID(), laso, nil, &d)
			return d.Posture.Lock != nil
		})
		a.Stop()
	}
	skew.Store(int64(14 * time.Minute))
	time.Sleep(500 * time.Millisecond) // five sweeps
	if n := len(incidentsOf(e, laso)); n != 0 {
		t.Fatalf("%d incidents after 14 minutes of silence", n)
	}
	skew.Store(int64(15*time.Minute + time.Second))
	testenv.Eventually(t, 10*time.Second, "the server-detected incident", func() bool { return len(incidentsOf(e, laso)) > 0 })
	time.Sleep(500 * time.Millisecond) // more sweeps: still one, and none for the locked device
	incs := incidentsOf(e, laso)
	if len(incs) != 1 || incs[0].DeviceID != unlocked.DeviceID() || incs[0].Detection != "telemetry" ||
		incs[0].Kind != "loss_of_control" || incs[0].DurationClass != "extended" {
		t.Fatalf("incidents %+v", incs)
	}
	var d struct {
		Compliance string `json:"compliance"`
	}
	e.Do("GET", "/api/v1/devices/"+unlocked.DeviceID(), laso, nil, &d)
	if d.Compliance != "quarantined" {
		t.Fatalf("silent unlocked device compliance %q, want quarantined", d.Compliance)
	}
}

// serveLocalAPI serves a's local socket, as `cordon-agent run` does, until
// the test ends, and returns its path.
func serveLocalAPI(t *testing.T, e *testenv.Env, a *agent.Agent) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := localapi.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go localapi.Serve(ctx, ln, a, e.Log)
	return sock
}
