package integration

import (
	"context"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
	"github.com/cordon-mdm/cordon/server/store"
)

// auditFault makes the database itself refuse every insert into
// audit_entries, as a read-only audit table would: a real fault below
// the server, not a mock of its auditor. heal undoes it.
func auditFault(t *testing.T, e *testenv.Env) (heal func()) {
	t.Helper()
	db := e.Server.Store.DB()
	var stmts, undo []string
	if e.Server.Store.Dialect() == "postgres" {
		stmts = []string{
			`CREATE FUNCTION audit_read_only() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'read-only'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION audit_read_only()`}
		undo = []string{`DROP TRIGGER audit_read_only ON audit_entries`, `DROP FUNCTION audit_read_only()`}
	} else {
		stmts = []string{`CREATE TRIGGER audit_read_only BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'read-only'); END`}
		undo = []string{`DROP TRIGGER audit_read_only`}
	}
	for _, s := range stmts {
		if err := db.Exec(s).Error; err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return func() {
		for _, s := range undo {
			if err := db.Exec(s).Error; err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
}

// TestWipeWithoutAuditIsRefusedAndAlerted (AU-5, acceptance 1): with the
// audit table refusing inserts, a LASO's wipe answers 503 and nothing is
// queued, and a revoke, an incident, a profile and a group change are
// refused alike; every LASO and IT admin gets the alert through the real SMTP
// server; the failure is counted on /metrics; once the table takes
// inserts again, audit.failed is in the trail, the chain verifies, and a
// wipe goes through.
func TestWipeWithoutAuditIsRefusedAndAlerted(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		addr := freePort(t)
		smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
		e := testenv.New(t, dsn(t), server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(200*time.Millisecond))
		adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
		if err != nil {
			t.Fatal(err)
		}
		for email, role := range map[string]string{"laso1@pd.example": "laso", "laso2@pd.example": "laso",
			"it@pd.example": "it-admin", "auditor@pd.example": "auditor", "officer@pd.example": "user"} {
			if err := adm.AddUser(context.Background(), email, role, "correct horse battery staple 42"); err != nil {
				t.Fatal(err)
			}
		}
		adm.Close()
		laso, admin := e.APIKey("laso"), e.APIKey("it-admin")
		e.Audit("") // makes the auditor's key while keys can still be made
		a := e.StartAgent(e.MustEnroll())
		id := a.DeviceID()
		waitOnline(t, e, laso, id)
		// The agent's first report is evaluated after it is acknowledged,
		// in the background; its compliance.changed entry, coming after
		// the fault below, would be the first write refused, and the
		// alert would name it instead of the wipe. Once it is in, nothing
		// writes on its own until the next report (15 minutes) or a grace
		// deadline (a day away).
		testenv.Eventually(t, 15*time.Second, "the agent's first report evaluated", func() bool {
			for _, x := range e.Audit("compliance.changed") {
				if x.Target == "device:"+id {
					return true
				}
			}
			return false
		})

		user := e.APIKey("user")
		profiles, err := e.Server.Store.ListProfileDocs(context.Background())
		if err != nil || len(profiles) == 0 {
			t.Fatalf("profiles: %v %v", profiles, err)
		}
		profile := profiles[0]
		heal := auditFault(t, e)
		var refused struct {
			Error string `json:"error"`
		}
		if st := e.Do("POST", "/api/v1/devices/"+id+"/commands", laso, map[string]string{"kind": "wipe", "confirm": id}, &refused); st != 503 {
			t.Fatalf("wipe with the audit table read-only: %d %+v, want 503", st, refused)
		}
		if strings.Contains(refused.Error, "read-only") {
			t.Errorf("the database's words reached the caller: %q", refused.Error)
		}
		if st, _ := issue(t, e, admin, id, map[string]string{"kind": "lock"}); st != 503 {
			t.Fatalf("lock with the audit table read-only: %d, want 503", st)
		}
		var n int64
		if err := e.Server.Store.DB().Model(&store.Command{}).Where("device_id = ?", id).Count(&n).Error; err != nil || n != 0 {
			t.Fatalf("%d commands queued without their audit entry (%v)", n, err)
		}
		// The other security-relevant changes are refused alike and
		// leave nothing behind.
		if st := e.Do("POST", "/api/v1/devices/"+id+"/revoke", admin, map[string]string{"reason": "lost"}, nil); st != 503 {
			t.Errorf("revoke: %d, want 503", st)
		}
		if d, err := e.Server.Store.GetDevice(context.Background(), id); err != nil || d.Status == "revoked" {
			t.Errorf("device revoked without its entry: %+v %v", d, err)
		}
		if st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": id, "kind": "loss_of_control", "lock_state": "locked",
			"started_at": time.Now().UTC().Add(-time.Minute), "location": "bus 14", "description": "left on the seat"}, nil); st != 503 {
			t.Errorf("incident: %d, want 503", st)
		}
		if err := e.Server.Store.DB().Model(&store.Incident{}).Count(&n).Error; err != nil || n != 0 {
			t.Errorf("%d incidents stored without their entry (%v)", n, err)
		}
		if st := putRaw(t, e, admin, "/api/v1/profiles/"+profile.Name, profile.Document); st != 503 {
			t.Errorf("profile: %d, want 503", st)
		}
		if st := e.Do("PUT", "/api/v1/groups/patrol", admin, map[string]string{"profile": profile.Name}, nil); st != 503 {
			t.Errorf("group: %d, want 503", st)
		}
		if err := e.Server.Store.DB().Model(&store.Group{}).Where("name = ?", "patrol").Count(&n).Error; err != nil || n != 0 {
			t.Errorf("group stored without its entry (%v)", err)
		}

		// The alert: one message to each LASO and IT admin, nobody else.
		alerts := func() map[string]string {
			got := map[string]string{}
			for _, m := range smtpd.messages() {
				if !strings.Contains(m, "AUDIT FAILURE") {
					continue
				}
				if to := regexp.MustCompile(`(?m)^To: (\S+)`).FindStringSubmatch(m); to != nil {
					got[to[1]] = m
				}
			}
			return got
		}
		testenv.Eventually(t, 30*time.Second, "the alert to three people", func() bool { return len(alerts()) >= 3 })
		got := alerts()
		for _, rcpt := range []string{"laso1@pd.example", "laso2@pd.example", "it@pd.example"} {
			m, ok := got[rcpt]
			if !ok {
				t.Errorf("no alert to %s", rcpt)
				continue
			}
			if !strings.Contains(m, "command.requested") {
				t.Errorf("alert to %s does not name the failed action:\n%s", rcpt, m)
			}
		}
		if len(got) != 3 {
			t.Errorf("alerted %d addresses, want every LASO and IT admin and nobody else", len(got))
		}
		if f := metric(t, e, admin, "cordon_audit_write_failures_total"); f < 6 {
			t.Errorf("cordon_audit_write_failures_total = %v, want at least one for each refused change", f)
		}

		heal()
		var entry testenv.AuditEntry
		testenv.Eventually(t, 20*time.Second, "audit.failed in the trail", func() bool {
			es := e.Audit("audit.failed")
			if len(es) > 0 {
				entry = es[0]
			}
			return len(es) == 1
		})
		if n, _ := strconv.Atoi(entry.Details["failures"]); n < 6 || !strings.Contains(entry.Details["actions"], "command.requested") ||
			entry.Details["first"] == "" || entry.Details["last"] == "" {
			t.Errorf("audit.failed details %v", entry.Details)
		}
		var v struct {
			OK bool `json:"ok"`
		}
		if st := e.Do("GET", "/api/v1/audit/verify", e.APIKey("auditor"), nil, &v); st != 200 || !v.OK {
			t.Fatalf("verify after the fault: %d %+v", st, v)
		}
		if st, _ := issue(t, e, laso, id, map[string]string{"kind": "wipe", "confirm": id}); st != 202 {
			t.Fatalf("wipe once the trail is writable: %d", st)
		}
		if len(e.Audit("audit.failed")) != 1 {
			t.Error("audit.failed written more than once")
		}
	})
}

// metric reads one value from /metrics; the series must be there.
func metric(t *testing.T, e *testenv.Env, key, name string) float64 {
	t.Helper()
	f := metricOr(t, e, key, name)
	if f == -1 {
		t.Fatalf("%s not in /metrics", name)
	}
	return f
}
