package integration

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

type clockEntry struct {
	At          time.Time `json:"at"`
	State       string    `json:"state"`
	ClockSkew   bool      `json:"clock_skew"`
	SkewSeconds *int64    `json:"skew_seconds"`
}

type historyEntry struct {
	ReportID    string    `json:"report_id"`
	At          time.Time `json:"at"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	ClockSkew   bool      `json:"clock_skew"`
	SkewSeconds *int64    `json:"skew_seconds"`
}

// TestDeviceClocksCannotRewriteHistory is issue 14's acceptance 4 over the
// real channel: an enrolled device's identity sends raw posture frames
// whose times it chooses. A report dated a year ahead (locked) is kept at
// its receive time and flagged clock_skew; the honest unlocked report
// after it is the latest posture in the API and the console; the lock
// timeline holds nothing after now; incidents filed over the period
// classify on the trusted times. A report dated before enrollment is
// treated the same way, a spooled report ten minutes old keeps its
// time, and repeated skew opens the clock finding.
func TestDeviceClocksCannotRewriteHistory(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		laso, admin := e.APIKey("laso"), e.APIKey("it-admin")
		dir := e.MustEnroll()
		cfg, _ := dir.LoadConfig()
		id := cfg.DeviceID
		// Enrolled an hour ago, so that a spooled report ten minutes old
		// is after enrollment (the gateway reads this at connect).
		enrolled := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
		if err := e.Server.Store.DB().Model(&store.Device{}).Where("id = ?", id).Update("enrolled_at", enrolled).Error; err != nil {
			t.Fatal(err)
		}
		ws, err := dial(e, agentCert(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		send := func(rid string, at time.Time, lock string) (sent, acked time.Time) {
			t.Helper()
			frame, _ := protocol.Encode(protocol.TypePosture, rid, at, protocol.Posture{CollectedAt: at,
				OS:   protocol.OSIdentity{Platform: "linux/amd64", Name: "Debian GNU/Linux", Version: "12"},
				Lock: &protocol.LockState{State: lock, Provenance: protocol.Provenance{Source: "logind"}}})
			sent = time.Now().UTC()
			if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
			var ack protocol.Ack
			if env := readFrame(t, ws); env.Type != protocol.TypeAck || protocol.DecodeBody(env, &ack) != nil || ack.Ref != rid {
				t.Fatalf("report %s: got %+v", rid, env)
			}
			return sent, time.Now().UTC()
		}
		timeline := func() []clockEntry {
			t.Helper()
			var tl struct {
				Entries []clockEntry `json:"entries"`
			}
			if st := e.Do("GET", "/api/v1/devices/"+id+"/lock-timeline", laso, nil, &tl); st != 200 {
				t.Fatalf("lock-timeline: %d", st)
			}
			now := time.Now()
			for _, en := range tl.Entries {
				if en.At.After(now) {
					t.Fatalf("the lock timeline holds a future entry: %+v (now %s)", en, now)
				}
			}
			return tl.Entries
		}
		history := func() map[string]historyEntry {
			t.Helper()
			var h struct {
				Reports []historyEntry `json:"reports"`
			}
			if st := e.Do("GET", "/api/v1/devices/"+id+"/posture-history", laso, nil, &h); st != 200 {
				t.Fatalf("posture-history: %d", st)
			}
			out := map[string]historyEntry{}
			for _, r := range h.Reports {
				out[r.ReportID] = r
			}
			return out
		}
		type device struct {
			Posture *struct {
				Lock struct {
					State string `json:"state"`
				} `json:"lock"`
			} `json:"posture"`
			PostureAt          time.Time `json:"posture_at"`
			PostureClockSkew   bool      `json:"posture_clock_skew"`
			PostureSkewSeconds *int64    `json:"posture_skew_seconds"`
			Findings           []struct {
				Control  string `json:"control"`
				CJIS     string `json:"cjis"`
				Severity string `json:"severity"`
			} `json:"findings"`
		}
		getDevice := func() device {
			t.Helper()
			var d device
			if st := e.Do("GET", "/api/v1/devices/"+id, laso, nil, &d); st != 200 || d.Posture == nil {
				t.Fatalf("device: %d %+v", st, d)
			}
			return d
		}
		near := func(got *int64, want time.Duration) bool {
			return got != nil && math.Abs(float64(*got)-want.Seconds()) <= 5
		}

		// A spooled report from ten minutes ago, after enrollment: its
		// past time is kept, unflagged.
		spooledAt := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Microsecond)
		send("spooled", spooledAt, protocol.LockUnlocked)
		if h := history()["spooled"]; !h.At.Equal(spooledAt) || h.ClockSkew || h.SkewSeconds != nil {
			t.Fatalf("spooled report %+v, want kept at %s, not flagged", h, spooledAt)
		}

		// A year ahead, locked: kept at its receive time, flagged with
		// the offset; the device's own time is kept for the record.
		future := time.Now().UTC().AddDate(1, 0, 0).Truncate(time.Microsecond)
		sent, acked := send("future", future, protocol.LockLocked)
		h := history()["future"]
		if !h.ClockSkew || !near(h.SkewSeconds, future.Sub(sent)) || !h.CollectedAt.Equal(future) ||
			!h.At.Equal(h.ReceivedAt) || h.At.Before(sent) || h.At.After(acked) {
			t.Fatalf("future report %+v, want clock_skew ~%s at its receipt in [%s, %s]", h, future.Sub(sent), sent, acked)
		}
		if d := getDevice(); d.Posture.Lock.State != "locked" || !d.PostureClockSkew || !near(d.PostureSkewSeconds, future.Sub(sent)) || !d.PostureAt.Equal(h.At) {
			t.Fatalf("device after the future report: %+v", d)
		}
		lockedAt := h.At
		time.Sleep(1500 * time.Millisecond) // room for an incident between this report and the next

		// The honest report replaces the latest posture and the lock state.
		honestAt := time.Now().UTC().Truncate(time.Microsecond)
		send("honest", honestAt, protocol.LockUnlocked)
		d := getDevice()
		if d.Posture.Lock.State != "unlocked" || d.PostureClockSkew || d.PostureSkewSeconds != nil || !d.PostureAt.Equal(honestAt) {
			t.Fatalf("device after the honest report: %+v", d)
		}
		tl := timeline()
		var states []string
		for _, en := range tl {
			states = append(states, en.State)
		}
		if strings.Join(states, ",") != "unlocked,locked,unlocked" || !tl[0].At.Equal(spooledAt) ||
			!tl[1].At.Equal(lockedAt) || !tl[1].ClockSkew || !near(tl[1].SkewSeconds, future.Sub(sent)) ||
			!tl[2].At.Equal(honestAt) || tl[2].ClockSkew {
			t.Fatalf("lock timeline %+v", tl)
		}

		// The console's device page says unlocked and marks the skew.
		b := newBrowserless(t, e)
		b.signIn("it@agency.example", addConsoleUser(t, e, "it@agency.example", "it-admin"), time.Now)
		st, page, _ := b.get("/console/devices/" + id)
		if st != 200 || !strings.Contains(page, `id="lock-state"><span class="lock-unlocked">unlocked</span>`) ||
			!strings.Contains(page, `class="clock-skew"`) {
			t.Fatalf("console device page: %d\n%s", st, page)
		}

		// Incidents over the period classify on the trusted times.
		type incident struct {
			LockObserved  string `json:"lock_observed"`
			LockState     string `json:"lock_state"`
			Category      string `json:"category"`
			Contradiction string `json:"contradiction"`
		}
		file := func(start, end time.Time) incident {
			t.Helper()
			var inc incident
			if st := e.Do("POST", "/api/v1/incidents", admin, map[string]any{"device_id": id, "kind": "loss_of_control",
				"lock_state": "locked", "started_at": start, "ended_at": end, "location": "patrol car 12",
				"description": "out of sight"}, &inc); st != 201 {
				t.Fatalf("incident: %d %+v", st, inc)
			}
			return inc
		}
		// Between the skewed report and the honest one the device was
		// locked, as the skewed report said at its receipt. Had its year-
		// ahead date been stored, the timeline would show the spooled
		// unlocked state here and contradict the reporter.
		if inc := file(lockedAt.Add(300*time.Millisecond), lockedAt.Add(time.Second)); inc.LockObserved != "locked" ||
			inc.Category != "locked_minimal" || inc.Contradiction != "" {
			t.Fatalf("incident after the skewed report: %+v", inc)
		}
		// Nine to seven minutes ago the spooled report had it unlocked.
		if inc := file(spooledAt.Add(time.Minute), spooledAt.Add(3*time.Minute)); inc.LockObserved != "unlocked" ||
			inc.Category != "unlocked" || inc.Contradiction == "" {
			t.Fatalf("incident over the spooled period: %+v", inc)
		}

		// Before enrollment is a wrong clock too: kept at receipt, flagged.
		before := enrolled.Add(-24 * time.Hour)
		sent, acked = send("before-enrollment", before, protocol.LockLocked)
		h = history()["before-enrollment"]
		if !h.ClockSkew || !near(h.SkewSeconds, before.Sub(sent)) || !h.CollectedAt.Equal(before) ||
			h.At.Before(sent) || h.At.After(acked) {
			t.Fatalf("report from before enrollment %+v", h)
		}
		if d := getDevice(); d.Posture.Lock.State != "locked" || !d.PostureClockSkew || !d.PostureAt.Equal(h.At) {
			t.Fatalf("device after the report from before enrollment: %+v", d)
		}
		if tl := timeline(); len(tl) != 4 || !tl[3].ClockSkew || !tl[3].At.Equal(h.At) {
			t.Fatalf("lock timeline %+v", tl)
		}
		if _, page, _ := b.get("/console/devices/" + id); !strings.Contains(page, "<p class=\"clock-skew\">clock_skew: the device") {
			t.Fatalf("the console does not mark the latest posture as skewed:\n%s", page)
		}

		// A third skewed report of five opens the clock finding.
		send("future-2", time.Now().UTC().AddDate(0, 0, 3), protocol.LockLocked)
		testenv.Eventually(t, 5*time.Second, "the clock finding", func() bool {
			for _, f := range getDevice().Findings {
				if f.Control == "clock" && f.CJIS == "5.4 [AU-8]" && f.Severity == "moderate" {
					return true
				}
			}
			return false
		})
		// Audited once per connection, with the offset.
		if got := e.Audit("device.clock_skew"); len(got) != 1 || got[0].Details["report"] != "future" ||
			got[0].Target != "device:"+id || got[0].Details["skew_seconds"] == "" {
			t.Fatalf("device.clock_skew audit entries %+v", got)
		}
	})
}

// TestFastClockIncidentReport: a device whose clock runs an hour ahead
// reports a ten-minute loss of control over the channel. Its times would
// lie after the server's now and be refused; the frame's own send time
// shows the clock is at least an hour fast, so the server moves the
// report's times back by that, files it as the minimal loss it was, and
// says so in the incident's timeline. A report whose frame time is
// honest but whose ended_at is an hour ahead is still refused.
func TestFastClockIncidentReport(t *testing.T) {
	forEachDatabase(t, func(t *testing.T, dsn func(testing.TB) string) {
		e := testenv.New(t, dsn(t))
		laso := e.APIKey("laso")
		dir := e.MustEnroll()
		ws, err := dial(e, agentCert(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		report := func(fid string, sent time.Time, r protocol.IncidentReport) protocol.Envelope {
			t.Helper()
			frame, _ := protocol.Encode(protocol.TypeIncidentReport, fid, sent, r)
			if err := ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				t.Fatal(err)
			}
			return readFrame(t, ws)
		}

		before := time.Now().UTC()
		deviceNow := before.Add(time.Hour)
		ended := deviceNow
		env := report("fast-1", deviceNow, protocol.IncidentReport{Kind: "loss_of_control", LockState: "locked",
			StartedAt: deviceNow.Add(-10 * time.Minute), EndedAt: &ended, Description: "left on the cruiser's seat"})
		var ack protocol.Ack
		if env.Type != protocol.TypeAck || protocol.DecodeBody(env, &ack) != nil || ack.Incident == "" {
			t.Fatalf("a fast clock's report: got %+v (%s)", env, env.Body)
		}
		after := time.Now().UTC()
		var inc struct {
			StartedAt     time.Time  `json:"started_at"`
			EndedAt       *time.Time `json:"ended_at"`
			DurationClass string     `json:"duration_class"`
			Timeline      []struct {
				Actor, Action, Detail string
			} `json:"timeline"`
		}
		if st := e.Do("GET", "/api/v1/incidents/"+ack.Incident, laso, nil, &inc); st != 200 {
			t.Fatalf("incident: %d", st)
		}
		if inc.EndedAt == nil || inc.EndedAt.After(after) || inc.EndedAt.Before(before) {
			t.Errorf("ended_at %v, want between %s and %s (moved back by the clock's error)", inc.EndedAt, before, after)
		}
		if d := inc.EndedAt.Sub(inc.StartedAt); d != 10*time.Minute || inc.DurationClass != "minimal" {
			t.Errorf("duration %v, class %s; want the ten minutes the device measured, minimal", d, inc.DurationClass)
		}
		found := false
		for _, ev := range inc.Timeline {
			found = found || ev.Action == "clock_corrected" && ev.Actor == "server" && strings.Contains(ev.Detail, "ahead")
		}
		if !found {
			t.Errorf("no clock_corrected entry in the timeline: %+v", inc.Timeline)
		}

		honest := time.Now().UTC()
		future := honest.Add(time.Hour)
		env = report("fast-2", honest, protocol.IncidentReport{Kind: "loss_of_control", LockState: "locked",
			StartedAt: honest.Add(-10 * time.Minute), EndedAt: &future})
		if env.Type != protocol.TypeError {
			t.Fatalf("ended_at an hour ahead of an honest frame time: got %+v", env)
		}
	})
}
