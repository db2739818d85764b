// Package integration runs Cordon's end-to-end tests over the in-process
// environment of internal/testenv: real server, real agents, real TLS on
// loopback, on SQLite and on PostgreSQL.
package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/agent/state"
	"github.com/cordon-mdm/cordon/internal/fips"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/internal/wshandshake"
	"github.com/cordon-mdm/cordon/pki"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// forEachDatabase runs f against SQLite and PostgreSQL.
func forEachDatabase(t *testing.T, f func(t *testing.T, dsn func(testing.TB) string)) {
	for _, db := range testenv.Databases(t) {
		t.Run(db.Name, func(t *testing.T) { f(t, db.DSN) })
	}
}

type deviceJSON struct {
	ID       string  `json:"id"`
	Name     string  `json:"name"`
	Platform string  `json:"platform"`
	Online   bool    `json:"online"`
	LastSeen *string `json:"last_seen"`
	Status   string  `json:"status"`
	Posture  *struct {
		OS protocol.OSIdentity `json:"os"`
	} `json:"posture"`
}

func listDevices(e *testenv.Env, key string) []deviceJSON {
	var out struct {
		Devices []deviceJSON `json:"devices"`
	}
	if st := e.Do("GET", "/api/v1/devices", key, nil, &out); st != 200 {
		e.T.Fatalf("list devices: %d", st)
	}
	return out.Devices
}

func TestThreeAgentsEnrollConnectReportAndList(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		key := e.APIKey("it-admin")
		ids := map[string]bool{}
		for range 3 {
			dir := e.MustEnroll()
			a := e.StartAgent(dir)
			ids[a.DeviceID()] = true
		}
		testenv.Eventually(t, 5*time.Second, "three agents online with an OS posture", func() bool {
			n := 0
			for _, d := range listDevices(e, key) {
				if ids[d.ID] && d.Online && d.Posture != nil && d.Posture.OS.Platform != "" && d.LastSeen != nil {
					n++
				}
			}
			return n == 3
		})
		var one deviceJSON
		for id := range ids {
			if st := e.Do("GET", "/api/v1/devices/"+id, key, nil, &one); st != 200 || one.ID != id {
				t.Fatalf("GET device: %d %+v", st, one)
			}
			break
		}
		if one.Posture.OS.Name == "" && one.Posture.OS.Error == "" {
			t.Fatalf("posture has neither an OS name nor a reason: %+v", one.Posture.OS)
		}
		if got := len(e.Audit("device.connected")); got < 3 {
			t.Fatalf("%d device.connected audit entries, want 3", got)
		}
		if got := len(e.Audit("enrollment.succeeded")); got != 3 {
			t.Fatalf("%d enrollment.succeeded audit entries, want 3", got)
		}
	})
}

func TestEnrollmentRefusals(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		used := e.Token(time.Hour, 1)
		if _, err := e.Enroll(used); err != nil {
			t.Fatal(err)
		}
		expired := e.Token(time.Hour, 1)
		// Age the token in the database: the same row the server reads.
		if err := e.Server.Store.DB().Model(&store.EnrollmentToken{}).Where("uses_left = 1").
			Update("expires_at", time.Now().Add(-time.Minute).UTC()).Error; err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, token, want string
		}{
			{"reused", used, "already used"},
			{"expired", expired, "expired"},
			{"unknown", "cdt_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "unknown enrollment token"},
			{"garbage", "not-a-token", "unknown enrollment token"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := e.CountDevices()
				refusedBefore := len(e.Audit("enrollment.refused"))
				_, err := e.Enroll(c.token)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("enroll error = %v, want %q", err, c.want)
				}
				if after := e.CountDevices(); after != before {
					t.Fatalf("refused enrollment created a device: %d → %d", before, after)
				}
				refused := e.Audit("enrollment.refused")
				if len(refused) != refusedBefore+1 {
					t.Fatalf("%d refusal entries, want %d", len(refused), refusedBefore+1)
				}
				last := refused[len(refused)-1]
				if last.Source != "127.0.0.1" || last.Outcome != "denied" || !strings.Contains(last.Details["reason"], c.want) {
					t.Fatalf("audit entry %+v", last)
				}
			})
		}
	})
}

// dial connects to the gateway with cert, as an agent would.
func dial(e *testenv.Env, cert *tls.Certificate) (*websocket.Conn, error) {
	roots := x509.NewCertPool()
	roots.AddCert(e.Server.CA.Root())
	cfg := fips.TLS(fips.Default())
	cfg.RootCAs, cfg.ServerName, cfg.Certificates = roots, "127.0.0.1", []tls.Certificate{*cert}
	ws, resp, err := wshandshake.Dial(context.Background(), websocket.Dialer{HandshakeTimeout: 5 * time.Second},
		"wss://"+e.Server.AgentAddr()+protocol.GatewayPath, cfg, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return ws, err
}

func agentCert(t *testing.T, dir state.Dir) *tls.Certificate {
	t.Helper()
	c, err := dir.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deviceCert signs a certificate for id with the given CA and validity.
func deviceCert(t *testing.T, ca *pki.CA, id string, notBefore, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	csr, _ := x509.ParseCertificateRequest(der)
	chain, err := ca.SignDeviceValidity(context.Background(), csr, id, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, c := range chain {
		tc.Certificate = append(tc.Certificate, c.Raw)
	}
	return tc
}

func lastRefusal(t *testing.T, e *testenv.Env, n int) testenv.AuditEntry {
	t.Helper()
	var got []testenv.AuditEntry
	testenv.Eventually(t, 3*time.Second, "a device.refused audit entry", func() bool {
		got = e.Audit("device.refused")
		return len(got) > n
	})
	return got[len(got)-1]
}

func TestGatewayRefusesBadCertificates(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		now := time.Now()

		t.Run("another CA", func(t *testing.T) {
			other, err := pki.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			devicesBefore, refusals := e.CountDevices(), len(e.Audit("device.refused"))
			_, err = dial(e, deviceCert(t, other, uuid.NewString(), now.Add(-time.Minute), now.Add(time.Hour)))
			if err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
				t.Fatalf("certificate from another CA: %v", err)
			}
			got := lastRefusal(t, e, refusals)
			if got.Details["reason"] != "certificate not issued by this server's CA" || got.Source != "127.0.0.1" || got.Outcome != "denied" {
				t.Fatalf("audit %+v", got)
			}
			if e.CountDevices() != devicesBefore {
				t.Fatal("refused connection created a device")
			}
		})

		t.Run("expired", func(t *testing.T) {
			dir := e.MustEnroll()
			cfg, _ := dir.LoadConfig()
			cert := deviceCert(t, e.Server.CA, cfg.DeviceID, now.Add(-2*time.Hour), now.Add(-time.Hour))
			if err := e.Server.Store.AddCertificate(context.Background(), store.CertificateFor(cfg.DeviceID, cert.Leaf)); err != nil {
				t.Fatal(err)
			}
			devicesBefore, refusals := e.CountDevices(), len(e.Audit("device.refused"))
			if _, err := dial(e, cert); err == nil || !strings.Contains(err.Error(), "expired certificate") {
				t.Fatalf("expired certificate: %v", err)
			}
			got := lastRefusal(t, e, refusals)
			if got.Details["reason"] != "certificate expired or not yet valid" || got.Actor != "device:"+cfg.DeviceID {
				t.Fatalf("audit %+v", got)
			}
			if e.CountDevices() != devicesBefore {
				t.Fatal("refused connection created a device")
			}
		})

		t.Run("revoked", func(t *testing.T) {
			dir := e.MustEnroll()
			a := e.StartAgent(dir)
			testenv.Eventually(t, 5*time.Second, "agent connected", func() bool { return e.Server.Hub().Connected(a.DeviceID()) })
			key := e.APIKey("it-admin")
			if st := e.Do("POST", "/api/v1/devices/"+a.DeviceID()+"/revoke", key, map[string]string{"reason": "lost"}, nil); st != 200 {
				t.Fatalf("revoke: %d", st)
			}
			a.Stop()
			devicesBefore, refusals := e.CountDevices(), len(e.Audit("device.refused"))
			// A TLS alert carries no text; "bad certificate" is what a
			// verification callback can send, and the audit entry says why.
			if _, err := dial(e, agentCert(t, dir)); err == nil || !strings.Contains(err.Error(), "bad certificate") {
				t.Fatalf("revoked certificate: %v", err)
			}
			got := lastRefusal(t, e, refusals)
			if got.Details["reason"] != "certificate revoked" || got.Actor != "device:"+a.DeviceID() {
				t.Fatalf("audit %+v", got)
			}
			if e.CountDevices() != devicesBefore {
				t.Fatal("refused connection created a device")
			}
			if n := len(e.Audit("certificate.revoked")); n != 1 {
				t.Fatalf("%d certificate.revoked entries", n)
			}
			// The CA's CRL lists it too, for relying parties other than the gateway.
			crl, err := e.Server.CA.CRL()
			if err != nil {
				t.Fatal(err)
			}
			rl, err := x509.ParseRevocationList(crl)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range rl.RevokedCertificateEntries {
				found = found || r.SerialNumber.Cmp(agentCert(t, dir).Leaf.SerialNumber) == 0
			}
			if !found {
				t.Fatal("revoked certificate missing from the CRL")
			}
		})
	})
}

func TestSecondConnectionReplacesFirst(t *testing.T) {
	e := testenv.New(t, "")
	dir := e.MustEnroll()
	cert := agentCert(t, dir)
	cfg, _ := dir.LoadConfig()
	first, err := dial(e, cert)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	testenv.Eventually(t, 3*time.Second, "first connection registered", func() bool { return e.Server.Hub().Connected(cfg.DeviceID) })
	second, err := dial(e, cert)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_, _, err = readRaw(first)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != protocol.CloseReplaced {
		t.Fatalf("first connection ended with %v, want close %d", err, protocol.CloseReplaced)
	}
	// The newer connection is the live one and still works.
	hello, _ := protocol.Encode(protocol.TypeHello, "h1", time.Now(), protocol.Hello{Platform: "linux/amd64"})
	if err := second.WriteMessage(websocket.TextMessage, hello); err != nil {
		t.Fatal(err)
	}
	env := readFrame(t, second)
	if env.Type != protocol.TypeAck {
		t.Fatalf("got %s, want ack", env.Type)
	}
	if n := e.Server.Hub().Count(); n != 1 {
		t.Fatalf("%d live connections, want 1", n)
	}
	d, err := e.Server.Store.GetDevice(context.Background(), cfg.DeviceID)
	if err != nil || !d.Online {
		t.Fatalf("device online = %v, %v", d.Online, err)
	}
}

// readFrame returns the next frame that answers the test's own, skipping
// device_state, which the server pushes whenever the device's standing
// changes (after a hello, after a report's evaluation).
func readFrame(t *testing.T, ws *websocket.Conn) protocol.Envelope {
	t.Helper()
	for {
		_, data, err := readRaw(ws)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		env, err := protocol.Decode(data)
		if err != nil {
			t.Fatalf("decode %s: %v", data, err)
		}
		if env.Type != protocol.TypeDeviceState {
			return env
		}
	}
}

// readRaw reads the next frame that is not device_state, or the error.
func readRaw(ws *websocket.Conn) (int, []byte, error) {
	for {
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		mt, data, err := ws.ReadMessage()
		if err != nil {
			return mt, data, err
		}
		if env, derr := protocol.Decode(data); derr == nil && env.Type == protocol.TypeDeviceState {
			continue
		}
		return mt, data, nil
	}
}

func TestProtocolErrorsAndReadLimit(t *testing.T) {
	e := testenv.New(t, "")
	dir := e.MustEnroll()
	ws, err := dial(e, agentCert(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, bad := range []string{`{"v":1,"type":"posture",`, `{"v":7,"type":"hello","id":"x"}`, `{"v":1,"type":"exec","id":"y"}`} {
		ws.WriteMessage(websocket.TextMessage, []byte(bad))
		env := readFrame(t, ws)
		var pe protocol.Error
		if env.Type != protocol.TypeError || protocol.DecodeBody(env, &pe) != nil || pe.Message == "" {
			t.Fatalf("after %q got %+v", bad, env)
		}
	}
	// The connection survived: a valid report is acknowledged.
	p, _ := protocol.Encode(protocol.TypePosture, "p1", time.Now(), protocol.Posture{CollectedAt: time.Now(), OS: protocol.OSIdentity{Platform: "linux/amd64"}})
	ws.WriteMessage(websocket.TextMessage, p)
	if env := readFrame(t, ws); env.Type != protocol.TypeAck {
		t.Fatalf("valid report after errors: %+v", env)
	}
	// A frame over 1 MiB closes the connection with 1009.
	big := make([]byte, protocol.MaxFrameBytes+1)
	for i := range big {
		big[i] = 'a'
	}
	ws.WriteMessage(websocket.TextMessage, big)
	_, _, err = readRaw(ws)
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("oversized frame: %v, want close 1009", err)
	}
}

func TestAuditTamperIsDetected(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		for range 3 {
			e.Token(time.Hour, 1)
		}
		key := e.APIKey("auditor")
		var res struct {
			OK      bool   `json:"ok"`
			Entries int64  `json:"entries"`
			Broken  *int64 `json:"broken_seq"`
			Reason  string `json:"reason"`
		}
		if e.Do("GET", "/api/v1/audit/verify", key, nil, &res); !res.OK || res.Entries < 4 {
			t.Fatalf("intact log: %+v", res)
		}
		// An insider rewrites who created token 2.
		if err := e.Server.Store.DB().Exec("UPDATE audit_entries SET actor = 'local:nobody' WHERE seq = 2").Error; err != nil {
			t.Fatal(err)
		}
		res.OK, res.Broken = true, nil
		e.Do("GET", "/api/v1/audit/verify", key, nil, &res)
		if res.OK || res.Broken == nil || *res.Broken != 2 || !strings.Contains(res.Reason, "entry 2") {
			t.Fatalf("tampered log: %+v", res)
		}
	})
}

func TestAPIAuthorization(t *testing.T) {
	e := testenv.New(t, "")
	var errBody struct {
		Error string `json:"error"`
	}
	if st := e.Do("GET", "/api/v1/devices", "", nil, &errBody); st != 401 || errBody.Error == "" {
		t.Fatalf("no key: %d %+v", st, errBody)
	}
	if st := e.Do("GET", "/api/v1/devices", "cdk_aaaaaaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", nil, nil); st != 401 {
		t.Fatalf("forged key: %d", st)
	}
	auditor := e.APIKey("auditor")
	if st := e.Do("POST", "/api/v1/enrollment-tokens", auditor, map[string]any{"ttl": "1h"}, &errBody); st != 403 {
		t.Fatalf("auditor created a token: %d", st)
	}
	user := e.APIKey("user")
	if st := e.Do("GET", "/api/v1/audit", user, nil, nil); st != 403 {
		t.Fatalf("user read the audit log: %d", st)
	}
	admin := e.APIKey("it-admin")
	var tok struct {
		Token     string `json:"token"`
		ExpiresAt string `json:"expires_at"`
	}
	if st := e.Do("POST", "/api/v1/enrollment-tokens", admin, map[string]any{"ttl": "2h", "uses": 2}, &tok); st != 201 || !strings.HasPrefix(tok.Token, "cdt_") {
		t.Fatalf("create token: %d %+v", st, tok)
	}
	if st := e.Do("POST", "/api/v1/enrollment-tokens", admin, map[string]any{"ttl": "forever"}, &errBody); st != 400 {
		t.Fatalf("bad ttl: %d", st)
	}
	// The two-use token enrolls twice, then no more.
	for i := range 3 {
		_, err := e.Enroll(tok.Token)
		if (i < 2) != (err == nil) {
			t.Fatalf("enrollment %d with a 2-use token: %v", i+1, err)
		}
	}
	if n := len(e.Audit("api.denied")); n != 4 {
		t.Fatalf("%d api.denied entries, want 4", n)
	}
	if st := e.Do("GET", "/healthz", "", nil, nil); st != 200 {
		t.Fatalf("healthz: %d", st)
	}
}

func TestCertificateRenewalOverTheChannel(t *testing.T) {
	e := testenv.New(t, "", serverOpt(3*time.Second))
	dir := e.MustEnroll()
	before := agentCert(t, dir).Leaf
	a := e.StartAgent(dir, agentRenewCheck(100*time.Millisecond))
	testenv.Eventually(t, 10*time.Second, "a renewed certificate on disk", func() bool {
		c, err := dir.Certificate()
		return err == nil && c.Leaf.SerialNumber.Cmp(before.SerialNumber) != 0
	})
	after := agentCert(t, dir).Leaf
	if !after.NotAfter.After(before.NotAfter) {
		t.Fatal("renewed certificate does not outlive the old one")
	}
	renewed := e.Audit("certificate.renewed")
	if len(renewed) == 0 || renewed[0].Actor != "device:"+a.DeviceID() || renewed[0].Outcome != "success" {
		t.Fatalf("audit %+v", renewed)
	}
	// The agent reconnects with the new certificate.
	a.Stop()
	ws, err := dial(e, agentCert(t, dir))
	if err != nil {
		t.Fatalf("renewed certificate refused: %v", err)
	}
	ws.Close()
}

func TestResentReportIsStoredOnceAndLockTimelineRecordsChanges(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		dir := e.MustEnroll()
		cfg, _ := dir.LoadConfig()
		ws, err := dial(e, agentCert(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		t0 := time.Now().UTC().Add(-time.Minute).Truncate(time.Microsecond)
		send := func(id string, at time.Time, lock string) {
			frame, _ := protocol.Encode(protocol.TypePosture, id, at, protocol.Posture{CollectedAt: at,
				OS: protocol.OSIdentity{Platform: "linux/amd64"}, Lock: &protocol.LockState{State: lock, Provenance: protocol.Provenance{Source: "test"}}})
			if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
			var ack protocol.Ack
			if env := readFrame(t, ws); env.Type != protocol.TypeAck || protocol.DecodeBody(env, &ack) != nil || ack.Ref != id {
				t.Fatalf("report %s: got %+v", id, env)
			}
		}
		send("r1", t0, protocol.LockUnlocked)
		send("r2", t0.Add(10*time.Second), protocol.LockLocked)
		send("r2", t0.Add(10*time.Second), protocol.LockLocked) // ack lost, agent resends
		send("r3", t0.Add(20*time.Second), protocol.LockLocked)
		send("r4", t0.Add(30*time.Second), protocol.LockUnlocked)
		hist, err := e.Server.Store.PostureHistory(context.Background(), cfg.DeviceID, 100)
		if err != nil || len(hist) != 4 {
			t.Fatalf("history has %d reports (%v), want 4", len(hist), err)
		}
		var tl struct {
			Entries []struct {
				At     time.Time `json:"at"`
				State  string    `json:"state"`
				Source string    `json:"source"`
			} `json:"entries"`
		}
		if st := e.Do("GET", "/api/v1/devices/"+cfg.DeviceID+"/lock-timeline", e.APIKey("laso"), nil, &tl); st != 200 {
			t.Fatalf("lock-timeline: %d", st)
		}
		var got []string
		for _, en := range tl.Entries {
			got = append(got, en.State)
		}
		if strings.Join(got, ",") != "unlocked,locked,unlocked" || !tl.Entries[1].At.Equal(t0.Add(10*time.Second)) {
			t.Fatalf("timeline %+v", tl.Entries)
		}
	})
}
