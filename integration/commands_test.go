package integration

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/actions"
	"github.com/cordon-mdm/cordon/agent/enrollment"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/keyfile"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// fakeExecutor stands in for the device where a test is about the queue,
// not about what a command does to the machine; it counts every call so
// "never executed" and "executed once" can be asserted.
type fakeExecutor struct {
	mu    sync.Mutex
	calls map[string]int
	delay time.Duration // how long a lock takes
}

func (f *fakeExecutor) count(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[kind]
}

func (f *fakeExecutor) setDelay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

func (f *fakeExecutor) called(kind string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[kind]++
}

func (f *fakeExecutor) Lock(context.Context) actions.Outcome {
	f.called("lock")
	f.mu.Lock()
	d := f.delay
	f.mu.Unlock()
	time.Sleep(d)
	return actions.Outcome{Done: true, Detail: map[string]string{"lock_state": "locked"}}
}

func (f *fakeExecutor) BluetoothBlock(_ context.Context, addr string) actions.Outcome {
	f.called("bluetooth_block")
	return actions.Outcome{Done: true, Detail: map[string]string{"blocked": "true", "connected": "false"}}
}

func (f *fakeExecutor) Plan(context.Context) (actions.WipePlan, error) {
	return actions.WipePlan{}, nil
}

func (f *fakeExecutor) Erase(context.Context, actions.WipePlan) actions.Outcome {
	f.called("wipe")
	return actions.Outcome{Done: true, Detail: map[string]string{"erased": "fake"}}
}

type commandJSON struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Status     string          `json:"status"`
	ApprovedBy string          `json:"approved_by"`
	Result     *commandResults `json:"result"`
}

type commandResults struct {
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Detail  map[string]string `json:"detail"`
}

func issue(t *testing.T, e *testenv.Env, key, deviceID string, body map[string]string) (int, commandJSON) {
	t.Helper()
	var c commandJSON
	st := e.Do("POST", "/api/v1/devices/"+deviceID+"/commands", key, body, &c)
	return st, c
}

func waitCommand(t *testing.T, e *testenv.Env, key, id, want string) commandJSON {
	t.Helper()
	var c commandJSON
	testenv.Eventually(t, 15*time.Second, "command "+id+" "+want, func() bool {
		e.Do("GET", "/api/v1/commands/"+id, key, nil, &c)
		return c.Status == want
	})
	return c
}

func waitOnline(t *testing.T, e *testenv.Env, key, id string) {
	t.Helper()
	testenv.Eventually(t, 15*time.Second, "device "+id+" online", func() bool {
		var d struct {
			Online bool `json:"online"`
		}
		e.Do("GET", "/api/v1/devices/"+id, key, nil, &d)
		return d.Online
	})
}

// TestWipeIsTheLASOsAlone covers who may wipe, the confirm field and the
// hold that a burst of wipes trips.
func TestWipeIsTheLASOsAlone(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		laso, laso2, admin := e.APIKey("laso"), e.APIKey("laso"), e.APIKey("it-admin")
		exec := &fakeExecutor{}
		online := e.StartAgent(e.MustEnroll(), agent.WithExecutor(exec))
		var offline []string
		for range 3 {
			dir := e.MustEnroll()
			a, err := agent.New(dir)
			if err != nil {
				t.Fatal(err)
			}
			offline = append(offline, a.DeviceID())
		}
		waitOnline(t, e, laso, online.DeviceID())

		if st, _ := issue(t, e, admin, online.DeviceID(), map[string]string{"kind": "wipe", "confirm": online.DeviceID()}); st != 403 {
			t.Fatalf("it-admin wipe: %d, want 403", st)
		}
		if got := e.Audit("command.refused"); len(got) != 1 || !strings.Contains(got[0].Details["reason"], "may not wipe") {
			t.Fatalf("refusal audit: %+v", got)
		}
		for _, confirm := range []string{"", "someone-else"} {
			if st, _ := issue(t, e, laso, online.DeviceID(), map[string]string{"kind": "wipe", "confirm": confirm}); st != 400 {
				t.Fatalf("wipe with confirm %q: %d, want 400", confirm, st)
			}
		}
		// Three wipes of offline devices: queued, counted.
		for _, id := range offline {
			if st, c := issue(t, e, laso, id, map[string]string{"kind": "wipe", "confirm": id}); st != 202 || c.Status != "queued" {
				t.Fatalf("wipe %s: %d %+v", id, st, c)
			}
		}
		st, held := issue(t, e, laso, online.DeviceID(), map[string]string{"kind": "wipe", "confirm": online.DeviceID()})
		if st != 202 || held.Status != "held" {
			t.Fatalf("fourth wipe within ten minutes: %d %+v, want held", st, held)
		}
		time.Sleep(300 * time.Millisecond)
		if exec.count("wipe") != 0 {
			t.Fatal("a held wipe reached the device")
		}
		var c commandJSON
		if st := e.Do("POST", "/api/v1/commands/"+held.ID+"/approve", laso, nil, &c); st != 403 {
			t.Fatalf("issuer approving their own wipe: %d, want 403", st)
		}
		if st := e.Do("POST", "/api/v1/commands/"+held.ID+"/approve", admin, nil, &c); st != 403 {
			t.Fatalf("it-admin approving: %d, want 403", st)
		}
		if st := e.Do("POST", "/api/v1/commands/"+held.ID+"/approve", laso2, nil, &c); st != 200 {
			t.Fatalf("second LASO approving: %d", st)
		}
		done := waitCommand(t, e, laso, held.ID, "done")
		if exec.count("wipe") != 1 || done.ApprovedBy == "" {
			t.Fatalf("approved wipe: %d runs, %+v", exec.count("wipe"), done)
		}
		// The result is stored, then audited: the entry may trail the
		// status the API shows by a moment.
		for _, action := range []string{"command.requested", "command.held", "command.approved", "command.delivered", "command.completed"} {
			testenv.Eventually(t, 5*time.Second, action+" in the audit log", func() bool { return len(e.Audit(action)) > 0 })
		}
		// The wiped device is revoked: no more commands for it.
		testenv.Eventually(t, 10*time.Second, "wiped device revoked", func() bool {
			var d struct {
				Status string `json:"status"`
			}
			e.Do("GET", "/api/v1/devices/"+online.DeviceID(), laso, nil, &d)
			return d.Status == "revoked"
		})
		if st, _ := issue(t, e, laso, online.DeviceID(), map[string]string{"kind": "lock"}); st != 409 {
			t.Errorf("lock of a wiped device: %d, want 409", st)
		}
	})
}

// TestCommandsRunOnceAndOnlyWhenGenuine builds each bad command by hand
// and puts it in front of a real agent on a real connection.
func TestCommandsRunOnceAndOnlyWhenGenuine(t *testing.T) {
	e := testenv.New(t, "")
	laso := e.APIKey("laso")
	exec := &fakeExecutor{}
	a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(exec))
	waitOnline(t, e, laso, a.DeviceID())
	st, c := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "lock"})
	if st != 202 {
		t.Fatalf("lock: %d", st)
	}
	first := waitCommand(t, e, laso, c.ID, "done")
	if first.Result == nil || first.Result.Detail["lock_state"] != "locked" {
		t.Fatalf("lock result %+v", first.Result)
	}

	// Delivered again while it runs (a hello crossing the push does
	// this): the running command answers once, done.
	exec.setDelay(500 * time.Millisecond)
	st, slow := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "lock"})
	if st != 202 {
		t.Fatalf("lock: %d", st)
	}
	slowRec, err := e.Server.Store.GetCommand(context.Background(), slow.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.Server.SendToDevice(a.DeviceID(), slowRec.Frame)
	if got := waitCommand(t, e, laso, slow.ID, "done"); got.Result == nil || got.Result.Status != "done" {
		t.Fatalf("a command redelivered while running: %+v", got.Result)
	}
	if n := exec.count("lock"); n != 2 {
		t.Fatalf("%d locks ran, want 2 (one per command)", n)
	}
	exec.setDelay(0)

	// Delivered again, byte for byte: answered again, not run again.
	rec, err := e.Server.Store.GetCommand(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	acked := e.Audit("command.completed")
	if !e.Server.SendToDevice(a.DeviceID(), rec.Frame) {
		t.Fatal("agent not connected")
	}
	time.Sleep(500 * time.Millisecond)
	if n := exec.count("lock"); n != 2 {
		t.Fatalf("a redelivered command ran again (%d locks in all)", n)
	}
	if got := e.Audit("command.completed"); len(got) != len(acked) {
		t.Fatal("the repeated answer completed the command a second time")
	}

	key, err := keyfile.Read(e.DataDir + "/command-signing.key")
	if err != nil {
		t.Fatal(err)
	}
	serverKey := key.(ed25519.PrivateKey)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	now := time.Now().UTC()
	for _, bad := range []struct {
		name string
		key  ed25519.PrivateKey
		cmd  func(id string) protocol.Command
		why  string
	}{
		{"signed with another key", otherKey, func(id string) protocol.Command {
			return protocol.Command{ID: id, DeviceID: a.DeviceID(), Kind: "wipe", IssuedAt: now, NotAfter: now.Add(time.Hour)}
		}, "signature"},
		{"addressed to another device", serverKey, func(id string) protocol.Command {
			return protocol.Command{ID: id, DeviceID: "00000000-0000-4000-8000-000000000000", Kind: "wipe", IssuedAt: now, NotAfter: now.Add(time.Hour)}
		}, "addressed to device"},
		{"past its not-after", serverKey, func(id string) protocol.Command {
			return protocol.Command{ID: id, DeviceID: a.DeviceID(), Kind: "wipe", IssuedAt: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}
		}, "expired"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			id := "bad-" + strings.ReplaceAll(bad.name, " ", "-")
			signed, err := protocol.SignCommand(bad.key, bad.cmd(id))
			if err != nil {
				t.Fatal(err)
			}
			frame, err := protocol.Encode(protocol.TypeCommand, id, now, signed)
			if err != nil {
				t.Fatal(err)
			}
			// The server knows the id (as if its queue had sent it), so
			// the agent's answer is stored where the test can read it.
			if err := e.Server.Store.CreateCommand(context.Background(), &store.Command{ID: id, DeviceID: a.DeviceID(),
				Kind: "wipe", Issuer: "test", CreatedAt: now, NotAfter: now.Add(time.Hour), Status: store.CommandDelivered, Frame: frame}); err != nil {
				t.Fatal(err)
			}
			if !e.Server.SendToDevice(a.DeviceID(), frame) {
				t.Fatal("agent not connected")
			}
			got := waitCommand(t, e, laso, id, "failed")
			if got.Result == nil || !strings.Contains(got.Result.Message, bad.why) {
				t.Fatalf("answer %+v, want a refusal mentioning %q", got.Result, bad.why)
			}
			if n := exec.count("wipe"); n != 0 {
				t.Fatalf("a bad command was executed (%d wipes)", n)
			}
		})
	}
}

// TestQueuedLockSurvivesKill9: a lock queued for an offline device is in
// the database when the API answers, so a kill -9 of the server loses
// nothing: the restarted server delivers it when the device connects.
func TestQueuedLockSurvivesKill9(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		p := startServer(t, buildServer(t, ""), dsn(t))
		admin := func(args ...string) string {
			out, err := exec.Command(p.bin, append(args, "--data", p.data)...).Output()
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			return strings.TrimSpace(string(out))
		}
		token, laso := admin("token", "create"), admin("apikey", "create", "--name", "laso-1", "--role", "laso")
		fp, err := pki.ReadRootFingerprint(p.data)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		dir := state.Dir{Path: filepath.Join(t.TempDir(), "agent")}
		res, err := enrollment.Enroll(ctx, enrollment.Request{Server: "https://" + p.listen, Token: token,
			Fingerprint: fp, State: dir, Facts: posture.Facts(ctx, "test"), FIPS: fips.Default()})
		if err != nil {
			t.Fatal(err)
		}
		api := func(method, path string, out any) int {
			req, _ := http.NewRequest(method, "https://"+p.listen+path, strings.NewReader(`{"kind":"lock"}`))
			req.Header.Set("Authorization", "Bearer "+laso)
			req.Header.Set("Content-Type", "application/json")
			client := &http.Client{Timeout: 5 * time.Second, Transport: testenv.Validating(t, &http.Transport{TLSClientConfig: insecureForHealth()})}
			resp, err := client.Do(req)
			if err != nil {
				return 0
			}
			defer resp.Body.Close()
			json.NewDecoder(resp.Body).Decode(out)
			return resp.StatusCode
		}
		var c commandJSON
		if st := api("POST", "/api/v1/devices/"+res.Config.DeviceID+"/commands", &c); st != 202 || c.Status != "queued" {
			t.Fatalf("lock for an offline device: %d %+v", st, c)
		}
		p.signal(syscall.SIGKILL)
		p.cmd.Wait()
		p.start()

		ex := &fakeExecutor{}
		a, err := agent.New(dir, agent.WithExecutor(ex), agent.WithCollector(testenv.OSOnly{}), agent.WithBackoff(50*time.Millisecond, time.Second))
		if err != nil {
			t.Fatal(err)
		}
		testenv.RunAgent(t, a, dir)
		testenv.Eventually(t, 20*time.Second, "the queued lock done after the restart", func() bool {
			api("GET", "/api/v1/commands/"+c.ID, &c)
			return c.Status == "done"
		})
		if n := ex.count("lock"); n != 1 {
			t.Fatalf("lock ran %d times", n)
		}
	})
}
