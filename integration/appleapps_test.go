package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server/applemdm"
)

// Issue 17 acceptance 5: an installed application on the profile's
// deny-list becomes a finding that names it, and leaves with the app.
// The fake iPhone enrolls through SCEP and answers the server's
// InstalledApplicationList queries over /mdm.
func TestAppleDeniedApplicationIsAFinding(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		admin := e.APIKey("it-admin")
		// Only the application control: this test is about it alone.
		doc := "name: apps-only\ncontrols:\n  application_control:\n    mode: deny\n    bundle_ids: [com.example.chat]\n    grace: 24h\n"
		if st := putRaw(t, e, admin, "/api/v1/profiles/apps-only", doc); st != http.StatusOK {
			t.Fatalf("profile: HTTP %d", st)
		}
		if st := e.Do("PUT", "/api/v1/groups/default", admin, map[string]string{"profile": "apps-only"}, nil); st != http.StatusOK {
			t.Fatalf("group: HTTP %d", st)
		}

		dev, id := scepIPhone(t, e, "ofc.chen@pd.example", "00008110-APPSPHONE00000001")
		dev.Settle(t) // Cordon's profile and the first posture queries

		// installed queries the device and answers with apps.
		installed := func(apps ...string) {
			t.Helper()
			ref := uuid.NewString()
			if err := e.Server.AppleMDM.Send(t.Context(), id, applemdm.Command{RequestType: "InstalledApplicationList", Ref: ref}); err != nil {
				t.Fatal(err)
			}
			c := dev.Next(t)
			if c == nil || c.UUID != "InstalledApplicationList."+ref {
				t.Fatalf("device fetched %+v, want the InstalledApplicationList query", c)
			}
			var list []map[string]any
			for i, a := range apps {
				list = append(list, map[string]any{"Identifier": a, "Name": strings.ToUpper(a[strings.LastIndex(a, ".")+1:]),
					"ShortVersion": fmt.Sprintf("%d.0", i+1), "BundleSize": 1 << 20})
			}
			if next := dev.Answer(t, c.UUID, applemdm.StatusAcknowledged, map[string]any{"InstalledApplicationList": list}); next != nil {
				t.Fatalf("queue not empty after the answer: %+v", next)
			}
		}
		type finding struct {
			Control, Subject, Message, CJIS string
			Unknown                         bool
			ResolvedAt                      *string `json:"resolved_at"`
		}
		device := func() (state string, fs []finding) {
			t.Helper()
			var d struct {
				Compliance string    `json:"compliance"`
				Findings   []finding `json:"findings"`
			}
			if code := e.Do("GET", "/api/v1/devices/"+id, admin, nil, &d); code != http.StatusOK {
				t.Fatalf("get device: HTTP %d", code)
			}
			return d.Compliance, d.Findings
		}

		installed("gov.agency.cad", "com.example.chat", "com.apple.mobilesafari")
		state, fs := device()
		if len(fs) != 1 || fs[0].Control != "application_control" || fs[0].Subject != "com.example.chat" || fs[0].Unknown ||
			fs[0].Message != "denied application com.example.chat (CHAT 2.0) is installed" || fs[0].CJIS != "5.13.2 (h)" {
			t.Fatalf("findings %+v, want one naming com.example.chat", fs)
		}
		if state != "noncompliant" {
			t.Fatalf("compliance %q, want noncompliant (in grace)", state)
		}

		installed("gov.agency.cad", "com.apple.mobilesafari")
		if state, fs := device(); len(fs) != 0 || state != "compliant" {
			t.Fatalf("after the app went: %s, findings %+v", state, fs)
		}
		var hist struct{ Findings []finding }
		if code := e.Do("GET", "/api/v1/devices/"+id+"/findings", admin, nil, &hist); code != http.StatusOK {
			t.Fatalf("finding history: HTTP %d", code)
		}
		if len(hist.Findings) != 1 || hist.Findings[0].Subject != "com.example.chat" || hist.Findings[0].ResolvedAt == nil {
			t.Fatalf("history %+v, want the resolved finding", hist.Findings)
		}
	})
}
