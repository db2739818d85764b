package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server"
)

func ptr[T any](v T) *T { return &v }

// mutablePosture is a collector whose report the test edits.
type mutablePosture struct {
	mu sync.Mutex
	p  protocol.Posture
}

func (m *mutablePosture) Collect(ctx context.Context) (protocol.Posture, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.p
	p.CollectedAt = time.Now().UTC()
	return p, nil
}

func (m *mutablePosture) set(f func(p *protocol.Posture)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.p)
}

// compliantLaptop passes every cjis-baseline control.
func compliantLaptop() protocol.Posture {
	return protocol.Posture{
		OS:         protocol.OSIdentity{Name: "Debian GNU/Linux", Version: "12", Hostname: "cruiser-12", AgentVersion: "test", Platform: "linux/amd64", Source: "test"},
		LockPolicy: &protocol.LockPolicy{Enabled: ptr(true), TimeoutSeconds: ptr(int64(600)), Provenance: protocol.Provenance{Source: "test"}},
		Disk:       &protocol.DiskEncryption{State: protocol.DiskEncrypted, Volume: "/", Provenance: protocol.Provenance{Source: "test"}},
		Patch:      &protocol.PatchLevel{PendingSecurity: ptr(0), Provenance: protocol.Provenance{Source: "test"}},
		Hygiene: &protocol.Hygiene{FirewallOn: ptr(true), AntimalwareOn: ptr(true), SecureBoot: ptr(true), RootedSuspected: ptr(false),
			Provenance: protocol.Provenance{Source: "test"}},
	}
}

type accessJSON struct {
	Decision   string   `json:"decision"`
	Reasons    []string `json:"reasons"`
	Compliance string   `json:"compliance"`
}

// TestAccessDecisionFlips: the access decision follows encryption and
// patch age both ways, over the console API and for the device itself
// over the mTLS listener; a quarantined device is denied however
// compliant it is.
func TestAccessDecisionFlips(t *testing.T) {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := testenv.New(t, "", server.WithComplianceClock(clock), server.WithSweepInterval(100*time.Millisecond))
	laso := e.APIKey("laso")
	col := &mutablePosture{p: compliantLaptop()}
	dir := e.MustEnroll()
	a := e.StartAgent(dir, agent.WithCollector(col), agent.WithPollInterval(100*time.Millisecond))
	access := func() accessJSON {
		var d accessJSON
		e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/access", laso, nil, &d)
		return d
	}
	want := func(decision, state, why string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, "access "+decision+" ("+why+")", func() bool {
			d := access()
			return d.Decision == decision && d.Compliance == state
		})
	}
	want("allow", "compliant", "a compliant laptop")

	// The device asks for itself with its own certificate.
	roots := x509.NewCertPool()
	roots.AddCert(e.Server.CA.Root())
	cfg := fips.TLS(fips.Default())
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, "127.0.0.1", []tls.Certificate{*agentCert(t, dir)}
	mtls := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	self := func() accessJSON {
		resp, err := mtls.Get("https://" + e.Server.AgentAddr() + "/api/v1/access")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d accessJSON
		json.NewDecoder(resp.Body).Decode(&d)
		return d
	}
	if d := self(); d.Decision != "allow" {
		t.Fatalf("the device's own question: %+v", d)
	}

	col.set(func(p *protocol.Posture) { p.Disk.State = protocol.DiskUnencrypted })
	want("deny", "quarantined", "encryption off, no grace")
	if d := self(); d.Decision != "deny" || !strings.Contains(strings.Join(d.Reasons, " "), "disk_encryption") {
		t.Fatalf("the device's own question after encryption went off: %+v", d)
	}
	col.set(func(p *protocol.Posture) { p.Disk.State = protocol.DiskEncrypted })
	want("allow", "compliant", "encryption back on")

	// Pending security updates (a count, as older agents send: held to the
	// 15-day critical window): allowed in the window, denied past
	// it without another report (grace runs by the clock), allowed when
	// patched.
	col.set(func(p *protocol.Posture) { p.Patch.PendingSecurity = ptr(4) })
	want("allow", "noncompliant", "updates pending, in the window")
	skew.Store(int64(31 * 24 * time.Hour))
	want("deny", "quarantined", "updates pending past the window")
	col.set(func(p *protocol.Posture) { p.Patch.PendingSecurity = ptr(0) })
	want("allow", "compliant", "patched")

	// An incident's quarantine denies a compliant device until resolved.
	var inc struct{ ID string }
	e.Do("POST", "/api/v1/incidents", laso, map[string]any{"device_id": a.DeviceID(), "kind": "compromise", "lock_state": "locked",
		"started_at": time.Now().UTC().Add(-time.Minute)}, &inc)
	want("deny", "quarantined", "quarantined by the incident")
	if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID, laso, map[string]any{"status": "resolved", "ended_at": time.Now().UTC()}, nil); st != 200 {
		t.Fatalf("resolve: %d", st)
	}
	want("allow", "compliant", "incident resolved")
	// unknown → compliant → quarantined → compliant → noncompliant →
	// quarantined (the clock, seen by the sweep) → compliant →
	// quarantined (the incident) → compliant.
	// The decision is computed from the findings; the audit entry of the
	// change may trail it by a moment.
	testenv.Eventually(t, 5*time.Second, "one compliance.changed per change (8)", func() bool {
		return len(e.Audit("compliance.changed")) == 8
	})
	time.Sleep(300 * time.Millisecond) // three sweeps: no more
	if n := len(e.Audit("compliance.changed")); n != 8 {
		t.Errorf("%d compliance.changed audit entries, want one per change", n)
	}
}

// TestInvalidProfileKeepsThePreviousOne: a profile that does not validate
// is refused with its field and line, and the one in force stays.
func TestInvalidProfileKeepsThePreviousOne(t *testing.T) {
	e := testenv.New(t, "")
	admin := e.APIKey("it-admin")
	put := func(doc string) (int, map[string]any) {
		var out map[string]any
		st := putRawOut(t, e, admin, "/api/v1/profiles/cjis-baseline", doc, &out)
		return st, out
	}
	get := func() string {
		req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/api/v1/profiles/cjis-baseline", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return b.String()
	}
	before := get()
	if !strings.Contains(before, "max_timeout: 30m") {
		t.Fatalf("shipped baseline not served:\n%s", before)
	}
	st, out := put("name: cjis-baseline\ncontrols:\n  session_lock:\n    required: true\n    max_timeout: 2h\n")
	if st != 400 || out["field"] != "controls.session_lock.max_timeout" || out["line"] != float64(5) {
		t.Fatalf("invalid profile: %d %v", st, out)
	}
	if get() != before {
		t.Fatal("the invalid profile replaced the one in force")
	}
	if n := len(e.Audit("profile.rejected")); n != 1 {
		t.Fatalf("%d profile.rejected entries", n)
	}
	if st, out := put("name: cjis-baseline\ncontrols:\n  session_lock: {required: true, max_timeout: 15m}\n"); st != 200 {
		t.Fatalf("valid profile: %d %v", st, out)
	}
	if !strings.Contains(get(), "15m") {
		t.Fatal("the valid profile is not in force")
	}
	// Apple rendering of the shipped baseline: a plist, served as such.
	putRaw(t, e, admin, "/api/v1/profiles/cjis-baseline", before)
	req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/api/v1/profiles/cjis-baseline/mobileconfig", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var mc map[string]any
	if _, err := plist.Unmarshal(mustRead(t, resp.Body), &mc); err != nil || resp.Header.Get("Content-Type") != "application/x-apple-aspen-config" ||
		mc["PayloadType"] != "Configuration" {
		t.Fatalf("mobileconfig %s: %v %v", resp.Header.Get("Content-Type"), mc, err)
	}
}

// TestBluetoothRequestWorkflow: request → the named supervisor endorses →
// IT approves or denies with a reason; wrong roles and wrong people are
// refused; every step is in the audit log.
func TestBluetoothRequestWorkflow(t *testing.T) {
	e := testenv.New(t, "")
	user, admin, laso := e.APIKey("user"), e.APIKey("it-admin"), e.APIKey("laso")
	sergeant := e.APIKey("user") // a second user key: the supervisor
	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, laso, a.DeviceID())
	supervisor := supervisorName(t, e, sergeant)

	var req struct{ ID, Status string }
	if st := e.Do("POST", "/api/v1/bluetooth/requests", user, map[string]any{"device_id": a.DeviceID(), "address": "aa:bb:cc:dd:ee:01",
		"name": "Dictation headset", "reason": "court transcription", "supervisor": supervisor}, &req); st != 201 || req.Status != "pending" {
		t.Fatalf("request: %d %+v", st, req)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/approve", user, map[string]any{}, nil); st != 403 {
		t.Fatalf("a user approved: %d", st)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/approve", admin, map[string]any{}, nil); st != 409 {
		t.Fatalf("approved before the supervisor's endorsement: %d", st)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/endorse", user, nil, nil); st != 403 {
		t.Fatalf("the requester endorsed: %d", st)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/endorse", sergeant, nil, &req); st != 200 || req.Status != "endorsed" {
		t.Fatalf("endorse: %d %+v", st, req)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+req.ID+"/approve", admin, map[string]any{"reason": "approved for court use"}, &req); st != 200 || req.Status != "approved" {
		t.Fatalf("approve: %d %+v", st, req)
	}
	var list struct {
		Allowlist []struct{ Address, Scope, Request string } `json:"allowlist"`
	}
	e.Do("GET", "/api/v1/bluetooth/allowlist", laso, nil, &list)
	if len(list.Allowlist) != 1 || list.Allowlist[0].Address != "AA:BB:CC:DD:EE:01" || list.Allowlist[0].Scope != "device:"+a.DeviceID() {
		t.Fatalf("allow-list after approval: %+v", list)
	}

	// A denial carries its reason.
	var second struct{ ID, Status, Decision string }
	e.Do("POST", "/api/v1/bluetooth/requests", user, map[string]any{"device_id": a.DeviceID(), "address": "11:22:33:44:55:66",
		"reason": "personal earbuds", "supervisor": supervisor}, &second)
	e.Do("POST", "/api/v1/bluetooth/requests/"+second.ID+"/endorse", sergeant, nil, nil)
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+second.ID+"/deny", admin, map[string]any{}, nil); st != 400 {
		t.Fatalf("a denial without a reason: %d", st)
	}
	if st := e.Do("POST", "/api/v1/bluetooth/requests/"+second.ID+"/deny", admin, map[string]any{"reason": "personal devices are not allowed on CJI hardware"}, &second); st != 200 ||
		second.Status != "denied" || second.Decision != "personal devices are not allowed on CJI hardware" {
		t.Fatalf("deny: %d %+v", st, second)
	}
	// Three requests: supervisorName's probe as well.
	for action, n := range map[string]int{"bluetooth.request_created": 3, "bluetooth.request_endorsed": 3, "bluetooth.request_approved": 2,
		"bluetooth.request_denied": 1} {
		if got := len(e.Audit(action)); got != n {
			t.Errorf("%d %s audit entries, want %d (refusals included)", got, action, n)
		}
	}
}

// supervisorName finds the actor name of an API key by making it act.
func supervisorName(t *testing.T, e *testenv.Env, key string) string {
	t.Helper()
	var req struct{ Requester string }
	a := e.StartAgent(e.MustEnroll())
	if st := e.Do("POST", "/api/v1/bluetooth/requests", key, map[string]any{"device_id": a.DeviceID(), "address": "00:00:00:00:00:01",
		"reason": "probe", "supervisor": "nobody"}, &req); st != 201 {
		t.Fatalf("probe request: %d", st)
	}
	return req.Requester
}

// putRaw PUTs a raw document (a profile is YAML, not JSON).
func putRaw(t *testing.T, e *testenv.Env, key, path, doc string) int {
	return putRawOut(t, e, key, path, doc, nil)
}

func putRawOut(t *testing.T, e *testenv.Env, key, path, doc string, out any) int {
	t.Helper()
	req, _ := http.NewRequest("PUT", e.Server.ConsoleURL()+path, strings.NewReader(doc))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func mustRead(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
