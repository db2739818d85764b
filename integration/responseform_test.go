//go:build linux && !android

package integration

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/agent/posture"
	"github.com/cordon-mdm/cordon/internal/dbustest"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
)

type formKnown struct {
	Value  string `json:"value"`
	Source string `json:"source"`
}

type responseForm struct {
	IncidentID string `json:"incident_id"`
	Checklist  struct {
		AntimalwareRunning     formKnown `json:"antimalware_running"`
		LastSignatureUpdate    formKnown `json:"last_signature_update"`
		LastOSUpdate           formKnown `json:"last_os_update"`
		PendingSecurityUpdates formKnown `json:"pending_security_updates"`
		LockState              formKnown `json:"lock_state"`
		LockSpans              []struct {
			State string    `json:"state"`
			From  time.Time `json:"from"`
			To    time.Time `json:"to"`
		} `json:"lock_spans"`
		DevicesAffected formKnown `json:"devices_affected"`
		OtherEquipment  formKnown `json:"other_equipment_affected"`
		SuspectedCause  string    `json:"suspected_cause"`
		CJICompromised  string    `json:"cji_compromised"`
		PIICompromised  string    `json:"pii_compromised"`
		ActionPlan      string    `json:"action_plan"`
		Reimage         string    `json:"reimage_before_reconnect"`
		FBICopySentAt   string    `json:"copies_to_fbi_cjis_iso_at"`
	} `json:"checklist"`
}

// TestResponseFormOfARealAgentsIncident (issue 15, acceptance 7): a real
// agent with the real Linux collector (logind and BlueZ on a private
// bus, disk, patch and hygiene read from this host) reports; the device
// is lost while unlocked and locked a moment later; the incident's form
// carries the posture of the report nearest the start of the loss
// (antimalware, signatures, last OS update, pending updates, each naming
// that report) and the lock spans across the window. The LASO's fields
// round-trip through the API and the console, and each edit is audited
// with the fields it changed.
func TestResponseFormOfARealAgentsIncident(t *testing.T) {
	// The baseline test's laptop: ClamAV running (a real process named
	// clamd), the real apt-get against a fixture archive with one security
	// update pending, and apt's history saying when updates last ran.
	l := newLaptop(t)
	l.setInstalled("1.0")
	lastUpdate := time.Date(2026, 11, 20, 8, 15, 30, 0, time.UTC)
	l.write("root/var/log/apt/history.log", "\nStart-Date: "+lastUpdate.Add(-time.Minute).Local().Format("2006-01-02  15:04:05")+
		"\nCommandline: apt-get upgrade\nUpgrade: cordon-fixture-openssl:amd64 (0.9, 1.0)\nEnd-Date: "+lastUpdate.Local().Format("2006-01-02  15:04:05")+"\n")
	bus := dbustest.Start(t)
	bus.Mock(t, "logind", "org.freedesktop.login1")
	bus.Mock(t, "bluez5", "org.bluez")
	var session dbus.ObjectPath
	if err := bus.Call(t, "org.freedesktop.login1", "/org/freedesktop/login1", "org.freedesktop.DBus.Mock.AddSession",
		"c1", "seat0", uint32(1000), "officer", true).Store(&session); err != nil {
		t.Fatal(err)
	}
	bus.Call(t, "org.bluez", "/", "org.bluez.Mock.AddAdapter", "hci0", "cruiser-12")

	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		bus.Call(t, "org.freedesktop.login1", session, "org.freedesktop.login1.Session.SetLockedHint", false)
		e := testenv.New(t, dsn(t))
		dir := e.MustEnroll()
		sys := posture.NewSystem("test", posture.WithLinuxRoot(l.root()), posture.WithSightings(dir),
			posture.WithIntervals(posture.Intervals{Bluetooth: time.Second, Slow: time.Second, Patch: time.Second}))
		t.Cleanup(func() { sys.Close() })
		a := e.StartAgent(dir, agent.WithCollector(sys), agent.WithPollInterval(300*time.Millisecond))
		user, laso := e.APIKey("user"), e.APIKey("laso")
		var dev struct {
			Posture protocol.Posture `json:"posture"`
		}
		testenv.Eventually(t, 30*time.Second, "a report, unlocked, with the patch level", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID(), laso, nil, &dev)
			return dev.Posture.Lock != nil && dev.Posture.Lock.State == protocol.LockUnlocked &&
				dev.Posture.Patch != nil && dev.Posture.Patch.LastUpdate != nil && dev.Posture.Patch.PendingSecurity != nil
		})
		// The loss starts just after the latest report, so a report with
		// the patch level is the one nearest the start (the lock comes
		// 1.5 s later).
		var first struct {
			Reports []struct {
				At time.Time `json:"at"`
			} `json:"reports"`
		}
		e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/posture-history", laso, nil, &first)
		if len(first.Reports) == 0 {
			t.Fatal("no history before the loss")
		}
		started := first.Reports[0].At.Add(50 * time.Millisecond)
		time.Sleep(time.Until(started.Add(1500 * time.Millisecond)))
		bus.Call(t, "org.freedesktop.login1", session, "org.freedesktop.login1.Session.SetLockedHint", true)
		var locks struct {
			Entries []struct {
				At    time.Time `json:"at"`
				State string    `json:"state"`
			} `json:"entries"`
		}
		testenv.Eventually(t, 20*time.Second, "the lock in the timeline", func() bool {
			e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/lock-timeline", laso, nil, &locks)
			n := len(locks.Entries)
			return n > 0 && locks.Entries[n-1].State == protocol.LockLocked
		})
		lockedAt := locks.Entries[len(locks.Entries)-1].At
		ended := time.Now().UTC().Add(time.Second)
		time.Sleep(1100 * time.Millisecond)

		var inc struct {
			ID string `json:"id"`
		}
		if st := e.Do("POST", "/api/v1/incidents", user, map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
			"lock_state": "unknown", "started_at": started, "ended_at": ended, "location": "precinct lot",
			"description": "left on the cruiser's roof"}, &inc); st != 201 {
			t.Fatalf("report: %d", st)
		}

		// The report nearest the start, as the API's history has it.
		var hist struct {
			Reports []struct {
				ReportID string           `json:"report_id"`
				At       time.Time        `json:"at"`
				Posture  protocol.Posture `json:"posture"`
			} `json:"reports"`
		}
		e.Do("GET", "/api/v1/devices/"+a.DeviceID()+"/posture-history", laso, nil, &hist)
		if len(hist.Reports) < 2 {
			t.Fatalf("history: %+v", hist.Reports)
		}
		near := hist.Reports[0]
		for _, r := range hist.Reports {
			if abs(r.At.Sub(started)) < abs(near.At.Sub(started)) {
				near = r
			}
		}
		if near.Posture.Lock == nil || near.Posture.Lock.State != protocol.LockUnlocked {
			for _, r := range hist.Reports {
				t.Logf("report %s at %v lock %+v", r.ReportID, r.At, r.Posture.Lock)
			}
			t.Fatalf("the report nearest the start %v is not the unlocked one: %s %+v", started, near.ReportID, near.Posture.Lock)
		}

		var f responseForm
		if st := e.Do("GET", "/api/v1/incidents/"+inc.ID+"/form", laso, nil, &f); st != 200 {
			t.Fatalf("form: %d", st)
		}
		c := f.Checklist
		from := func(k formKnown, field string) {
			t.Helper()
			if !strings.Contains(k.Source, "posture report "+near.ReportID) || !strings.Contains(k.Source, field) {
				t.Errorf("%s: source %q does not name report %s", field, k.Source, near.ReportID)
			}
		}
		h, p := near.Posture.Hygiene, near.Posture.Patch
		switch {
		case h == nil || h.AntimalwareOn == nil:
			if c.AntimalwareRunning.Value != "unknown" {
				t.Errorf("antimalware: %+v, the report says nothing", c.AntimalwareRunning)
			}
		case *h.AntimalwareOn:
			if !strings.HasPrefix(c.AntimalwareRunning.Value, "yes") {
				t.Errorf("antimalware: %+v, report %+v", c.AntimalwareRunning, h)
			}
		default:
			if c.AntimalwareRunning.Value != "no" {
				t.Errorf("antimalware: %+v, report %+v", c.AntimalwareRunning, h)
			}
		}
		from(c.AntimalwareRunning, "hygiene.antimalware_on")
		from(c.LastSignatureUpdate, "hygiene.antimalware_signatures_at")
		if h != nil && h.AntimalwareSignaturesAt != nil && !strings.HasPrefix(c.LastSignatureUpdate.Value, h.AntimalwareSignaturesAt.UTC().Format("2006-01-02 15:04:05.00 UTC")) {
			t.Errorf("signatures: %+v, report %v", c.LastSignatureUpdate, h.AntimalwareSignaturesAt)
		}
		from(c.LastOSUpdate, "patch.last_update")
		if p != nil && p.LastUpdate != nil {
			if !strings.HasPrefix(c.LastOSUpdate.Value, p.LastUpdate.UTC().Format("2006-01-02 15:04:05.00 UTC")) {
				t.Errorf("last OS update: %+v, report %v", c.LastOSUpdate, p.LastUpdate)
			}
		} else if c.LastOSUpdate.Value != "unknown" {
			t.Errorf("last OS update: %+v, the report says nothing", c.LastOSUpdate)
		}
		from(c.PendingSecurityUpdates, "patch.pending_security")
		if p != nil && p.PendingSecurity != nil && strings.Split(c.PendingSecurityUpdates.Value, ":")[0] != strconv.Itoa(*p.PendingSecurity) {
			t.Errorf("pending: %+v", c.PendingSecurityUpdates)
		}
		// This laptop's values, which the report carried.
		if !strings.HasPrefix(c.AntimalwareRunning.Value, "yes (ClamAV") || !strings.HasPrefix(c.LastOSUpdate.Value, "2026-11-20 08:15:30.00 UTC") ||
			!strings.HasPrefix(c.PendingSecurityUpdates.Value, "1: cordon-fixture-openssl") {
			t.Errorf("the laptop's posture is not on the form: antimalware %q, last OS update %q, pending %q",
				c.AntimalwareRunning.Value, c.LastOSUpdate.Value, c.PendingSecurityUpdates.Value)
		}
		t.Logf("form from report %s: antimalware %q, signatures %q, last OS update %q, pending %q",
			near.ReportID, c.AntimalwareRunning.Value, c.LastSignatureUpdate.Value, c.LastOSUpdate.Value, c.PendingSecurityUpdates.Value)
		// Lock spans: unlocked from the start until the lock, then locked
		// until the end, as the device reported.
		if len(c.LockSpans) != 2 || c.LockSpans[0].State != "unlocked" || c.LockSpans[1].State != "locked" ||
			!c.LockSpans[0].From.Equal(started.Truncate(time.Microsecond)) || !c.LockSpans[0].To.Equal(lockedAt) ||
			!c.LockSpans[1].To.Equal(ended.Truncate(time.Microsecond)) {
			t.Errorf("lock spans %+v (start %v, lock %v, end %v)", c.LockSpans, started, lockedAt, ended)
		}
		if !strings.Contains(c.LockState.Source, "lock timeline") || c.DevicesAffected.Value != "1" || c.OtherEquipment.Source == "" {
			t.Errorf("lock %+v, devices %+v, other %+v", c.LockState, c.DevicesAffected, c.OtherEquipment)
		}

		// The LASO's fields over the API.
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID+"/form", laso, map[string]any{}, nil); st != 400 {
			t.Fatalf("an empty PATCH: %d, want 400", st)
		}
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID+"/form", e.APIKey("it-admin"), map[string]any{"suspected_cause": "x"}, nil); st != 403 {
			t.Fatalf("an it-admin's PATCH: %d, want 403", st)
		}
		sent := time.Now().UTC().Truncate(time.Second)
		if st := e.Do("PATCH", "/api/v1/incidents/"+inc.ID+"/form", laso, map[string]any{"suspected_cause": "left on the roof at shift change",
			"cji_compromised": "no", "pii_compromised": "unknown", "action_plan": "recover, re-image, retrain",
			"reimage_before_reconnect": "required", "copies_to_fbi_cjis_iso_at": sent}, &f); st != 200 {
			t.Fatalf("PATCH: %d", st)
		}
		e.Do("GET", "/api/v1/incidents/"+inc.ID+"/form", laso, nil, &f)
		c = f.Checklist
		if c.SuspectedCause != "left on the roof at shift change" || c.CJICompromised != "no" || c.PIICompromised != "unknown" ||
			c.ActionPlan != "recover, re-image, retrain" || c.Reimage != "required" || c.FBICopySentAt != sent.Format("2006-01-02T15:04:05.000000Z") {
			t.Errorf("after the PATCH: %+v", c)
		}

		// And through the console's form (CSRF-protected).
		email := "laso-form@agency.gov"
		b := newBrowserless(t, e)
		b.signIn(email, addConsoleUser(t, e, email, "laso"), time.Now)
		st, page, _ := b.get("/console/incidents/" + inc.ID + "/form")
		if st != 200 || !strings.Contains(page, "left on the roof at shift change") || !strings.Contains(page, "source: posture report "+near.ReportID) ||
			!strings.Contains(page, `id="laso-form"`) {
			t.Fatalf("console form: %d %.400s", st, page)
		}
		if st, _, _ := b.post("/console/incidents/"+inc.ID+"/form", url.Values{"csrf": {"forged"}, "reimage_before_reconnect": {"done"}}); st != 403 {
			t.Errorf("a forged token: %d, want 403", st)
		}
		if st, _, loc := b.post("/console/incidents/"+inc.ID+"/form", url.Values{"reimage_before_reconnect": {"done"},
			"suspected_cause": {"left on the roof at shift change"}}); st != 303 || !strings.Contains(loc, "done=form") {
			t.Fatalf("console POST: %d %s", st, loc)
		}
		e.Do("GET", "/api/v1/incidents/"+inc.ID+"/form", laso, nil, &f)
		if f.Checklist.Reimage != "done" || f.Checklist.SuspectedCause != "left on the roof at shift change" {
			t.Errorf("after the console's edit: %+v", f.Checklist)
		}

		edits := e.Audit("incident.form_updated")
		if len(edits) != 2 {
			t.Fatalf("form edits audited: %+v", edits)
		}
		if edits[0].Details["fields"] != "action_plan,cji_compromised,copies_to_fbi_cjis_iso_at,pii_compromised,reimage_before_reconnect,suspected_cause" ||
			edits[0].Actor != "apikey:laso" && !strings.HasPrefix(edits[0].Actor, "apikey:") {
			t.Errorf("API edit: %+v", edits[0])
		}
		if edits[1].Details["fields"] != "reimage_before_reconnect" || edits[1].Details["field.reimage_before_reconnect"] != "done" ||
			!strings.Contains(edits[1].Actor, email) {
			t.Errorf("console edit: %+v", edits[1])
		}

		// The printable page: the form as HTML, strict CSP, a print stylesheet.
		req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/api/v1/incidents/"+inc.ID+"/form", nil)
		req.Header.Set("Authorization", "Bearer "+laso)
		req.Header.Set("Accept", "text/html")
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "style-src 'self'") || strings.Contains(csp, "unsafe") {
			t.Errorf("CSP %q", csp)
		}
		for _, want := range []string{"Re-image before reconnection", "done", "Copies to the FBI CJIS ISO", `href="/console/static/form.css"`} {
			if !strings.Contains(string(html), want) {
				t.Errorf("printable page lacks %q", want)
			}
		}
		css, _ := e.Client().Get(e.Server.ConsoleURL() + "/console/static/form.css")
		body, _ := io.ReadAll(css.Body)
		css.Body.Close()
		if css.StatusCode != 200 || !strings.Contains(string(body), "@media print") {
			t.Errorf("print stylesheet: %d", css.StatusCode)
		}
		var raw map[string]any
		e.Do("GET", "/api/v1/incidents/"+inc.ID+"/form", laso, nil, &raw)
		if b, _ := json.Marshal(raw["checklist"]); !strings.Contains(string(b), `"lock_spans"`) {
			t.Errorf("JSON checklist %s", b)
		}
	})
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
