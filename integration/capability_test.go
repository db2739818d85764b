package integration

import (
	"slices"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

type capabilitiesJSON struct {
	CapabilityVersion int      `json:"capability_version"`
	Capabilities      []string `json:"capabilities"`
}

// waitCapabilities waits until the API shows what the device's agent
// announced in hello.
func waitCapabilities(t *testing.T, e *testenv.Env, key, id string, v int, caps []string) {
	t.Helper()
	var d capabilitiesJSON
	testenv.Eventually(t, 15*time.Second, "device "+id+" recorded with its capabilities", func() bool {
		e.Do("GET", "/api/v1/devices/"+id, key, nil, &d)
		return d.CapabilityVersion == v && slices.Equal(d.Capabilities, caps)
	})
}

// waitHelloAcked waits until the agent's hello on its current connection
// was acknowledged: from then on the server knows what it announced.
func waitHelloAcked(t *testing.T, a *testenv.Agent) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "agent connected", func() bool { return a.Status().Connection == "connected" })
}

// TestOlderAgentGetsOnlyWhatItAnnounced: an agent announcing capability
// version 2 (posture and renewal only) is recorded as such, and the
// server sends it neither commands nor device state; its command waits
// in the queue. A current agent beside it is recorded with this build's
// version and runs its command.
func TestOlderAgentGetsOnlyWhatItAnnounced(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		laso := e.APIKey("laso")
		oldCaps := []string{protocol.CapPosture, protocol.CapRenew}
		oldExec, curExec := &fakeExecutor{}, &fakeExecutor{}
		oldDir := e.MustEnroll()
		old := e.StartAgent(oldDir, agent.WithExecutor(oldExec), agent.WithCapabilities(2, oldCaps))
		cur := e.StartAgent(e.MustEnroll(), agent.WithExecutor(curExec))

		waitCapabilities(t, e, laso, old.DeviceID(), 2, oldCaps)
		// An agent run in this process announces all but agent_updates:
		// only the real binary replaces itself.
		inProcess := slices.DeleteFunc(slices.Clone(protocol.AgentCapabilities), func(c string) bool { return c == protocol.CapUpdates })
		waitCapabilities(t, e, laso, cur.DeviceID(), int(protocol.CurrentCapabilityVersion), inProcess)
		waitHelloAcked(t, old)
		waitHelloAcked(t, cur)

		st, oldCmd := issue(t, e, laso, old.DeviceID(), map[string]string{"kind": "lock"})
		if st != 202 || oldCmd.Status != "queued" {
			t.Fatalf("lock for the older agent: %d %+v", st, oldCmd)
		}
		st, curCmd := issue(t, e, laso, cur.DeviceID(), map[string]string{"kind": "lock"})
		if st != 202 {
			t.Fatalf("lock for the current agent: %d", st)
		}
		if got := waitCommand(t, e, laso, curCmd.ID, "done"); got.Result == nil || curExec.count("lock") != 1 {
			t.Fatalf("the current agent's lock: %+v, %d runs", got.Result, curExec.count("lock"))
		}
		// The current agent heard its device state after hello; the older
		// one never does.
		testenv.Eventually(t, 10*time.Second, "device state at the current agent", func() bool {
			return cur.Status().Compliance != ""
		})

		// A reconnect is a hello and a Ready of its own: still nothing.
		old.Stop()
		old = e.StartAgent(oldDir, agent.WithExecutor(oldExec), agent.WithCapabilities(2, oldCaps))
		waitHelloAcked(t, old)
		time.Sleep(time.Second)
		var c commandJSON
		if st := e.Do("GET", "/api/v1/commands/"+oldCmd.ID, laso, nil, &c); st != 200 || c.Status != "queued" || c.Result != nil {
			t.Fatalf("the older agent's command: %d %+v, want still queued", st, c)
		}
		if n := oldExec.count("lock"); n != 0 {
			t.Fatalf("the older agent ran %d locks", n)
		}
		if s := old.Status().Compliance; s != "" {
			t.Fatalf("the older agent was sent its device state (%q)", s)
		}
		for _, d := range e.Audit("command.delivered") {
			if d.Details["command"] == oldCmd.ID {
				t.Fatalf("the older agent's command was delivered: %+v", d)
			}
		}

		// Once the device runs an agent that takes commands, the command
		// that waited goes out.
		old.Stop()
		upgraded := e.StartAgent(oldDir, agent.WithExecutor(oldExec))
		waitCapabilities(t, e, laso, upgraded.DeviceID(), int(protocol.CurrentCapabilityVersion), inProcess)
		waitCommand(t, e, laso, oldCmd.ID, "done")
		if n := oldExec.count("lock"); n != 1 {
			t.Fatalf("the upgraded agent ran %d locks, want 1", n)
		}
	})
}
