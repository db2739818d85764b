package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/audit"
)

// TestAuditTrailReadsAudited (AU-2): every read of the trail writes one
// entry with the filter it used: the API list, verify, cordonctl's
// export (its many pages one entry) and the console's audit page.
func TestAuditTrailReadsAudited(t *testing.T) {
	e := testenv.New(t, "")
	auditor, laso := e.APIKey("auditor"), e.APIKey("laso")
	reads := func(pred func(testenv.AuditEntry) bool) []testenv.AuditEntry {
		var out []testenv.AuditEntry
		for _, a := range e.Audit(audit.TrailRead) {
			if pred(a) {
				out = append(out, a)
			}
		}
		return out
	}

	// The API list, with every filter.
	if st := e.Do("GET", "/api/v1/audit?action=user.created&target=user:probe@agency.example&after=3&limit=5", auditor, nil, nil); st != 200 {
		t.Fatalf("list: %d", st)
	}
	got := reads(func(a testenv.AuditEntry) bool { return a.Details["target"] == "user:probe@agency.example" })
	if len(got) != 1 || !strings.HasPrefix(got[0].Actor, "apikey:auditor-") || got[0].Source != "127.0.0.1" || got[0].Outcome != "success" ||
		got[0].Details["action"] != "user.created" || got[0].Details["after"] != "3" || got[0].Details["limit"] != "5" || got[0].Details["via"] != "api" {
		t.Fatalf("the list's audit.read: %+v", got)
	}

	// Verify.
	if st := e.Do("GET", "/api/v1/audit/verify", auditor, nil, nil); st != 200 {
		t.Fatalf("verify: %d", st)
	}
	if v := e.Audit(audit.TrailVerified); len(v) != 1 || !strings.HasPrefix(v[0].Actor, "apikey:auditor-") || v[0].Details["ok"] != "true" || v[0].Details["via"] != "api" {
		t.Fatalf("verify's audit.verified: %+v", v)
	}

	// cordonctl audit export over more than one page: one entry.
	ctx := context.Background()
	for i := range 1100 {
		if err := e.Server.Audit.Record(ctx, audit.Entry{Actor: "test", Source: "local", Action: "test.filler", Target: "x", Outcome: audit.Success,
			Details: map[string]string{"i": time.Duration(i).String()}}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cordonctlCmd(buildBinary(t, "cordonctl", ""), e, laso, "audit", "export").Output()
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n < 1100 {
		t.Fatalf("export wrote %d entries", n)
	}
	entryReads := func(a testenv.AuditEntry) bool {
		return strings.HasPrefix(a.Actor, "apikey:laso-") && a.Details["what"] != "checkpoints"
	}
	got = reads(entryReads)
	if len(got) != 1 || got[0].Details["after"] != "0" || got[0].Details["limit"] != "1000" || got[0].Details["entries"] != "1000" {
		t.Fatalf("the export's audit.read entries (want one for its pages): %+v", got)
	}
	// A second export is a second read.
	if _, err := cordonctlCmd(buildBinary(t, "cordonctl", ""), e, laso, "audit", "export", "--after", "1000").Output(); err != nil {
		t.Fatal(err)
	}
	// The export ends with the checkpoints, read (and recorded) once each time.
	if cp := reads(func(a testenv.AuditEntry) bool { return a.Details["what"] == "checkpoints" }); len(cp) != 2 ||
		!strings.HasPrefix(cp[0].Actor, "apikey:laso-") || cp[0].Details["via"] != "api" {
		t.Fatalf("the exports' checkpoint reads: %+v", cp)
	}
	if got = reads(entryReads); len(got) != 2 || got[1].Details["after"] != "1000" {
		t.Fatalf("a second export: %+v", got)
	}

	// The console's audit page.
	pw := addConsoleUser(t, e, "auditor@agency.example", "auditor")
	b := newBrowserless(t, e)
	b.signIn("auditor@agency.example", pw, time.Now)
	if st, _, _ := b.get("/console/audit?action=user.disabled"); st != 200 {
		t.Fatalf("audit page: %d", st)
	}
	got = reads(func(a testenv.AuditEntry) bool { return a.Actor == "user:auditor@agency.example" })
	if len(got) != 1 || got[0].Details["action"] != "user.disabled" || got[0].Details["limit"] != "100" || got[0].Details["via"] != "console" ||
		got[0].Details["verified"] != "true" {
		t.Fatalf("the console page's audit.read: %+v", got)
	}
}
