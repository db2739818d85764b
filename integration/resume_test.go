package integration

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/store"
)

// restartable is a server on one data dir and database that a test stops
// and starts again, as an operator restarting cordon-server would.
type restartable struct {
	t        *testing.T
	dir, dsn string
	log      *slog.Logger
	srv      *server.Server
}

func (r *restartable) start(agentAddr string) {
	r.t.Helper()
	srv, err := server.New(r.t.Context(), server.WithDataDir(r.dir), server.WithListen("127.0.0.1:0"), server.WithAgentListen(agentAddr),
		server.WithDatabase(r.dsn), server.WithLogger(r.log), server.WithPingInterval(2*time.Second))
	if err != nil {
		r.t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(r.t.Context()); err != nil {
		r.t.Fatalf("server.Start: %v", err)
	}
	r.srv = srv
}

func (r *restartable) stop() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		r.t.Fatalf("shutdown: %v", err)
	}
	r.srv = nil
}

func (r *restartable) enroll() state.Dir {
	r.t.Helper()
	ctx := r.t.Context()
	adm, err := server.OpenAdmin(ctx, r.dir, r.dsn)
	if err != nil {
		r.t.Fatal(err)
	}
	tok, _, err := adm.CreateToken(ctx, time.Hour, 1, "")
	adm.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	dir := state.Dir{Path: filepath.Join(r.t.TempDir(), "agent")}
	if _, err := enrollment.Enroll(ctx, enrollment.Request{Server: r.srv.ConsoleURL(), Token: tok, Fingerprint: r.srv.CA.RootFingerprint(),
		State: dir, Facts: posture.Facts(ctx, "test"), FIPS: fips.Default()}); err != nil {
		r.t.Fatalf("enroll: %v", err)
	}
	return dir
}

// entries are the audit entries of action about device id, oldest first.
func (r *restartable) entries(action, id string) []map[string]string {
	r.t.Helper()
	es, err := r.srv.Store.ListAudit(r.t.Context(), store.AuditQuery{Action: action, Target: "device:" + id})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []map[string]string
	for _, e := range es {
		d := map[string]string{}
		if err := json.Unmarshal([]byte(e.Details), &d); err != nil {
			r.t.Fatalf("details of %s: %v", action, err)
		}
		out = append(out, d)
	}
	return out
}

// logTo sends the servers' logs to the test log, shown on failure.
type logTo struct{ t testing.TB }

func (w logTo) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestReconnectAfterRestartResumesTLS is issue 18's acceptance 3: agents
// connected to one server process reconnect to the next one on the same
// data dir by resuming their TLS sessions, with tickets the first
// process issued (the ticket keys are in the data dir on SQLite, sealed
// in the database on PostgreSQL). A device revoked while it was
// disconnected offers its ticket too, and is refused: a resumed session
// still goes through the revocation check.
func TestReconnectAfterRestartResumesTLS(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		r := &restartable{t: t, dir: t.TempDir(), dsn: dsn(t),
			log: slog.New(slog.NewTextHandler(logTo{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
		addr := freeAddr(t)
		r.start(addr)
		kept, revoked := r.enroll(), r.enroll()
		var ids []string
		for _, dir := range []state.Dir{kept, revoked} {
			a, err := agent.New(dir, agent.WithLogger(r.log), agent.WithVersion("test"), agent.WithCollector(testenv.OSOnly{}),
				agent.WithBackoff(50*time.Millisecond, time.Second))
			if err != nil {
				t.Fatal(err)
			}
			testenv.RunAgent(t, a, dir)
			ids = append(ids, a.DeviceID())
		}
		keptID, revokedID := ids[0], ids[1]
		testenv.Eventually(t, 20*time.Second, "both agents connected", func() bool {
			return len(r.entries(audit.DeviceConnected, keptID)) == 1 && len(r.entries(audit.DeviceConnected, revokedID)) == 1
		})
		for _, id := range ids {
			if got := r.entries(audit.DeviceConnected, id); len(got) != 1 || got[0]["tls_resumed"] != "false" {
				t.Fatalf("first connect of %s: %v, want one full handshake", id, got)
			}
		}
		r.stop()

		// A process on the same data dir that the agents cannot reach (a
		// maintenance start) revokes one device while it is disconnected.
		r.start("127.0.0.1:0")
		if err := r.srv.Devices.Revoke(t.Context(), revokedID, "reported stolen", "user:it@agency.example", "test"); err != nil {
			t.Fatal(err)
		}
		r.stop()

		r.start(addr)
		defer r.stop()
		testenv.Eventually(t, 20*time.Second, "the kept agent back", func() bool { return len(r.entries(audit.DeviceConnected, keptID)) >= 2 })
		got := r.entries(audit.DeviceConnected, keptID)
		if len(got) != 2 || got[1]["tls_resumed"] != "true" {
			t.Fatalf("connects of the kept device: %v, want the second resumed from the first process's ticket", got)
		}
		testenv.Eventually(t, 20*time.Second, "the revoked device refused on resumption", func() bool {
			for _, e := range r.entries(audit.DeviceRefused, revokedID) {
				if e["reason"] == "certificate revoked" && e["tls_resumed"] == "true" {
					return true
				}
			}
			return false
		})
		if r.srv.Hub().Connected(revokedID) || len(r.entries(audit.DeviceConnected, revokedID)) != 1 {
			t.Fatal("the revoked device got a session")
		}
	})
}

// TestAdmissionRefusesFastAndAgentsStillConnect: with the handshake
// limit at one per core and every slot held by a client that sends
// nothing, agents are turned away at once (a TLS alert, not a timeout),
// wait as the server asks, and all connect once the slots are free.
func TestAdmissionRefusesFastAndAgentsStillConnect(t *testing.T) {
	e := testenv.New(t, "", server.WithHandshakeLimit(1))
	const n = 8
	dirs := make([]state.Dir, n)
	for i := range dirs {
		dirs[i] = e.MustEnroll()
	}
	var holders []net.Conn
	for range 64 { // more than one per core on any test machine
		c, err := net.Dial("tcp", e.Server.AgentAddr())
		if err != nil {
			t.Fatal(err)
		}
		holders = append(holders, c)
	}
	defer func() {
		for _, c := range holders {
			c.Close()
		}
	}()
	for _, dir := range dirs {
		e.StartAgent(dir)
	}
	testenv.Eventually(t, 8*time.Second, "every agent turned away as busy", func() bool {
		for _, dir := range dirs {
			st, err := dir.LoadStatus()
			if err != nil || !strings.Contains(st.LastError, "gateway busy") {
				return false
			}
		}
		return true
	})
	for _, c := range holders {
		c.Close()
	}
	testenv.Eventually(t, 30*time.Second, "every agent connected", func() bool { return e.Server.Hub().Count() == n })
}
