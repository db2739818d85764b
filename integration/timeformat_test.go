package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

var (
	// Anything that starts like a time stamp...
	jsonStamp  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}`)
	humanStamp = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}[^ <"]*(?: UTC)?`)
	// ...must be UTC with hundredths or finer (AU-8).
	goodJSON  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{2,}Z$`)
	goodHuman = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}\.\d{2,}(?: UTC|Z)$`)

	postureBlock = regexp.MustCompile(`(?s)<pre class="posture">.*?</pre>`)
)

// TestEveryTimeHasHundredths is AU-8: every time Cordon renders or
// exports (the API's JSON on every GET route, the console's pages, the
// response form, incident email) is UTC to the hundredth of a second or
// finer. The device's own report under "posture" is shown as the agent
// sent it and is not Cordon's rendering.
func TestEveryTimeHasHundredths(t *testing.T) {
	addr := freePort(t)
	smtpd := startSMTP(t, addr, filepath.Join(t.TempDir(), "mail"))
	e := testenv.New(t, "", server.WithSMTP("smtp://"+addr, "cordon@pd.example"), server.WithSweepInterval(200*time.Millisecond))
	fx := newInputFixture(t, e)
	lasoPW := addConsoleUser(t, e, "laso-au8@pd.example", "laso")
	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, fx.keys["laso"], a.DeviceID())
	var inc struct{ ID string }
	if st := e.Do("POST", "/api/v1/incidents", fx.keys["laso"], map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
		"lock_state": "locked", "started_at": time.Now().UTC().Add(-5 * time.Minute).Truncate(time.Second)}, &inc); st != 201 {
		t.Fatalf("incident: %d", st)
	}

	checked := 0
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if k != "posture" {
					walk(where+"."+k, c)
				}
			}
		case []any:
			for _, c := range x {
				walk(where+"[]", c)
			}
		case string:
			if jsonStamp.MatchString(x) {
				checked++
				if !goodJSON.MatchString(x) {
					t.Errorf("%s = %q: not UTC with hundredths", where, x)
				}
			}
		}
	}
	for _, route := range apiRoutes() {
		method, _, _ := strings.Cut(route, " ")
		if method != "GET" || strings.Contains(route, "openapi") || strings.Contains(route, "mobileconfig") ||
			strings.HasSuffix(route, "/ca.pem") || strings.HasSuffix(route, "/crl") || strings.HasSuffix(route, "/metrics") {
			continue
		}
		path := strings.Replace(fx.path(route), fx.incident, inc.ID, 1)
		path = strings.Replace(path, fx.device, a.DeviceID(), 1)
		for _, role := range []string{"laso", "it-admin"} {
			req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+path, nil)
			req.Header.Set("Authorization", "Bearer "+fx.keys[role])
			req.Header.Set("Accept", "application/json")
			resp, err := e.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "json") {
				continue
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			walk(route, v)
			break
		}
	}

	b := newBrowserless(t, e)
	b.signIn("laso-au8@pd.example", lasoPW, time.Now)
	pages := []string{"/console/", "/console/devices", "/console/devices/" + a.DeviceID(), "/console/incidents",
		"/console/incidents/" + inc.ID, "/console/incidents/" + inc.ID + "/form", "/console/audit", "/console/reviews"}
	for _, p := range pages {
		st, body, _ := b.get(p)
		if st != 200 {
			t.Fatalf("%s: %d", p, st)
		}
		// The device page also shows the report itself, as the device sent it.
		body = postureBlock.ReplaceAllString(body, "")
		for _, s := range humanStamp.FindAllString(body, -1) {
			checked++
			if !goodHuman.MatchString(s) {
				t.Errorf("console %s shows %q: not UTC with hundredths", p, s)
			}
		}
	}

	var mails []string
	testenv.Eventually(t, 20*time.Second, "the incident mail", func() bool {
		mails = smtpd.messages()
		return len(mails) > 0
	})
	for _, m := range mails {
		_, body, _ := strings.Cut(m, "\n\n") // the headers carry RFC 5322 dates, which are not Cordon's
		for _, s := range humanStamp.FindAllString(body, -1) {
			checked++
			if !goodHuman.MatchString(s) {
				t.Errorf("email shows %q: not UTC with hundredths", s)
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d times were found to check; the test would prove nothing", checked)
	}
	t.Logf("%d rendered and exported times checked", checked)
}
