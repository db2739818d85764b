package compliance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/profiles"
	"github.com/cordon-mdm/cordon/protocol"
)

func appProfile(t *testing.T, control string) *profiles.Profile {
	t.Helper()
	p, err := profiles.Parse([]byte("name: apps\ncontrols:\n  application_control:\n" + control))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// iphone is an Apple device's report with its installed applications.
func iphone(apps ...protocol.Application) protocol.Posture {
	return protocol.Posture{CollectedAt: now, OS: protocol.OSIdentity{Name: "iOS", Version: "17.5", Platform: "ios"},
		Software: &protocol.Software{Applications: apps, Provenance: protocol.Provenance{Source: "apple-mdm"}}}
}

var (
	chat   = protocol.Application{ID: "com.example.chat", Name: "Chat", Version: "4.2"}
	cad    = protocol.Application{ID: "gov.agency.cad", Name: "CAD", Version: "1.0"}
	safari = protocol.Application{ID: "com.apple.mobilesafari", Name: "Safari"}
)

func subjects(rs []Result) map[string]Result {
	m := map[string]Result{}
	for _, r := range rs {
		if r.Control == CtlApplications {
			m[r.Subject] = r
		}
	}
	return m
}

func TestDeniedApplicationIsAFinding(t *testing.T) {
	p := appProfile(t, "    mode: deny\n    bundle_ids: [com.example.chat, org.example.*]\n    grace: 24h\n")
	rs := subjects(Evaluate(p, iphone(cad, chat, safari), Facts{Now: now}))
	f, ok := rs["com.example.chat"]
	if len(rs) != 1 || !ok {
		t.Fatalf("findings %+v, want one for com.example.chat", rs)
	}
	if f.Unknown || f.Grace != 24*time.Hour || f.CJIS != "5.13.2 (h)" || f.Severity != "high" ||
		f.Message != "denied application com.example.chat (Chat 4.2) is installed" {
		t.Fatalf("finding %+v", f)
	}
	// Case does not hide an app, and a prefix covers its vendor.
	rs = subjects(Evaluate(p, iphone(protocol.Application{ID: "COM.Example.Chat"}, protocol.Application{ID: "org.example.game"}), Facts{Now: now}))
	if _, ok := rs["com.example.chat"]; !ok || len(rs) != 2 || rs["org.example.game"].Message != "denied application org.example.game is installed" {
		t.Fatalf("findings %+v", rs)
	}
	if rs := subjects(Evaluate(p, iphone(cad, safari), Facts{Now: now})); len(rs) != 0 {
		t.Fatalf("no denied app, findings %+v", rs)
	}
}

func TestApplicationNotAllowedIsAFinding(t *testing.T) {
	p := appProfile(t, "    mode: allow\n    bundle_ids: [gov.agency.cad, com.apple.*]\n")
	// A Mac lists each copy; one finding names both versions.
	old := chat
	old.Version = "3.9"
	rs := subjects(Evaluate(p, iphone(cad, chat, safari, old), Facts{Now: now}))
	if f := rs["com.example.chat"]; len(rs) != 1 || f.Message != "application com.example.chat (Chat 4.2, 3.9) is not on the profile's allow-list" || f.Grace != 0 {
		t.Fatalf("findings %+v", rs)
	}
	if rs := subjects(Evaluate(p, iphone(cad, safari), Facts{Now: now})); len(rs) != 0 {
		t.Fatalf("only allowed apps, findings %+v", rs)
	}
}

// TestApplicationsNotReported: agents list no applications, so a laptop
// is not evaluated (and not made noncompliant); a device that could not
// list them is an unknown finding; platforms scope the control.
func TestApplicationsNotReported(t *testing.T) {
	p := appProfile(t, "    mode: deny\n    bundle_ids: [com.example.chat]\n")
	laptop := good()
	if rs := subjects(Evaluate(p, laptop, Facts{Now: now, Allowed: allowed})); len(rs) != 0 {
		t.Fatalf("a laptop that lists no applications: %+v", rs)
	}
	failed := iphone()
	failed.Software.SetUnknown("applications", "InstalledApplicationList failed: MCMDMErrorDomain 12021: not now")
	rs := subjects(Evaluate(p, failed, Facts{Now: now}))
	if f := rs[""]; len(rs) != 1 || !f.Unknown || !strings.Contains(f.Message, "could not tell: InstalledApplicationList failed") {
		t.Fatalf("findings %+v, want one unknown", rs)
	}
	excused := iphone()
	excused.Software.SetNotApplicable("applications", "no")
	if f := subjects(Evaluate(p, excused, Facts{Now: now}))[""]; !f.Unknown {
		t.Fatalf("a device that calls its applications not applicable: %+v", f)
	}
	scoped := appProfile(t, "    mode: deny\n    bundle_ids: [com.example.chat]\n    platforms: [android]\n")
	if rs := subjects(Evaluate(scoped, iphone(chat), Facts{Now: now})); len(rs) != 0 {
		t.Fatalf("control scoped to android, iPhone findings %+v", rs)
	}
	// An Apple MDM Mac is "macos"; "darwin" is a Mac with the agent.
	mac := iphone(chat)
	mac.OS.Platform = "macos"
	for platforms, want := range map[string]int{"[macos]": 1, "[darwin]": 0} {
		p := appProfile(t, "    mode: deny\n    bundle_ids: [com.example.chat]\n    platforms: "+platforms+"\n")
		if rs := subjects(Evaluate(p, mac, Facts{Now: now})); len(rs) != want {
			t.Errorf("an Apple MDM Mac under platforms %s: %+v, want %d findings", platforms, rs, want)
		}
	}
}

// TestApplicationFindingsAreBounded: an allow-list that forgot a vendor
// gives maxAppFindings findings and one for the rest, each subject
// within the column.
func TestApplicationFindingsAreBounded(t *testing.T) {
	p := appProfile(t, "    mode: allow\n    bundle_ids: [gov.agency.cad]\n")
	var apps []protocol.Application
	for i := range maxAppFindings + 7 {
		apps = append(apps, protocol.Application{ID: fmt.Sprintf("com.vendor.app%03d", i)})
	}
	long := "com." + strings.Repeat("x", 100)
	apps = append(apps, protocol.Application{ID: long + ".a"}, protocol.Application{ID: long + ".b"})
	rs := subjects(Evaluate(p, iphone(apps...), Facts{Now: now}))
	if len(rs) != maxAppFindings+1 {
		t.Fatalf("%d findings, want %d", len(rs), maxAppFindings+1)
	}
	more := rs[appsMore]
	if !strings.HasPrefix(more.Message, "9 more applications are not on the profile's allow-list: com.vendor.app") {
		t.Fatalf("the rest: %+v", more)
	}
	for s := range rs {
		if len(s) > maxSubject {
			t.Errorf("subject %q longer than %d", s, maxSubject)
		}
	}
	if a, b := subjectOf(long+".a"), subjectOf(long+".b"); a == b || len(a) != maxSubject {
		t.Errorf("long subjects %q %q", a, b)
	}
}
