package integration

import (
	"fmt"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

// TestMetricsStateOutboxAndFleet (acceptance 2, and the state half of
// the catalogue): an enrolled agent is counted in cordon_devices as the
// API shows it; the SMTP server is stopped, an incident is filed, and
// /metrics shows it open, the outbox's depth and oldest age rising and
// the failed attempts counted; past the hour it is overdue (IR-6) and,
// past the 15-minute line, escalated; with SMTP back the outbox drains
// and the deliveries are counted. The certificate horizon is served for
// the server, the CA and the nearest device.
func TestMetricsStateOutboxAndFleet(t *testing.T) {
	addr := freePort(t)
	maildir := filepath.Join(t.TempDir(), "mail")
	smtpd := startSMTP(t, addr, maildir)
	start := time.Now().UTC().Truncate(time.Second)
	clock := &fakeClock{t: start}
	e := testenv.New(t, "", server.WithSMTP("smtp://"+addr, "cordon@pd.example"),
		server.WithSweepInterval(200*time.Millisecond), server.WithIncidentClock(clock.Now))
	addLASO(t, e)
	key, laso := e.APIKey("auditor"), e.APIKey("laso")
	m := func(name string) float64 { t.Helper(); return metric(t, e, key, name) }

	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, laso, a.DeviceID())
	// Counted as the API shows it: its platform's OS, its compliance,
	// online (the same flag). The compliance settles after its first
	// report; the metric is read for the state the API gives at the time.
	testenv.Eventually(t, 30*time.Second, "the agent in cordon_devices as the API shows it", func() bool {
		var d struct {
			Compliance string `json:"compliance"`
			Online     bool   `json:"online"`
		}
		e.Do("GET", "/api/v1/devices/"+a.DeviceID(), laso, nil, &d)
		name := fmt.Sprintf(`cordon_devices\{compliance="%s",online="%v",platform="%s"\}`, d.Compliance, d.Online, runtime.GOOS)
		return d.Online && metricOr(t, e, key, name) == 1
	})

	now := float64(time.Now().Unix())
	for _, c := range []string{"server", "ca", "ca_intermediate", "device_nearest"} {
		if at := m(`cordon_certificate_expiry_timestamp_seconds\{certificate="` + c + `"\}`); at <= now {
			t.Errorf("certificate %s expires at %v, not in the future (now %v)", c, at, now)
		}
	}
	if v := metricOr(t, e, key, `cordon_certificate_expiry_timestamp_seconds\{certificate="apns"\}`); v != -1 {
		t.Errorf("no APNs certificate is stored, yet its expiry is served: %v", v)
	}

	open := `cordon_incidents_open\{category="locked_minimal",severity="low"\}`
	extended := `cordon_incidents_open\{category="locked_extended",severity="moderate"\}`
	depth := `cordon_notify_outbox_depth\{channel="email"\}`
	age := `cordon_notify_outbox_oldest_age_seconds\{channel="email"\}`
	failures := `cordon_notify_failures_total\{channel="email"\}`
	deliveries := `cordon_notify_deliveries_total\{channel="email"\}`
	if m(open) != 0 || m(depth) != 0 || m(age) != 0 || m("cordon_incidents_overdue") != 0 || m(failures) != 0 {
		t.Fatalf("before any incident: open %v, depth %v, age %v, overdue %v, failures %v",
			m(open), m(depth), m(age), m("cordon_incidents_overdue"), m(failures))
	}

	smtpd.stop()
	if st := e.Do("POST", "/api/v1/incidents", e.APIKey("user"), map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
		"lock_state": "locked", "started_at": start.Add(-5 * time.Minute), "location": "court lobby",
		"description": "left at security"}, nil); st != 201 {
		t.Fatalf("incident: %d", st)
	}
	if m(open) != 1 {
		t.Fatalf("filed: %s = %v, want 1", open, m(open))
	}
	if n, s := m("cordon_incident_report_delay_seconds_count"), m("cordon_incident_report_delay_seconds_sum"); n != 1 || s != 300 {
		t.Fatalf("report delay: %v observations, sum %vs; want one of 300 s (started 5 minutes before filing)", n, s)
	}
	testenv.Eventually(t, 30*time.Second, "a failed delivery attempt counted", func() bool { return m(failures) > 0 })
	f1 := m(failures)
	if d := m(depth); d < 1 {
		t.Fatalf("SMTP down: outbox depth %v", d)
	}
	// The notification clock moves two minutes: the oldest undelivered
	// message is two minutes old, and its retry fails again.
	clock.Set(start.Add(2 * time.Minute))
	if a := m(age); a != 120 {
		t.Fatalf("oldest undelivered age %vs two minutes on, want 120", a)
	}
	testenv.Eventually(t, 30*time.Second, "the retry's failure counted", func() bool { return m(failures) > f1 })

	// An hour and a minute after it was filed, with no mail accepted:
	// overdue against IR-6; and long past the 15-minute line: escalated
	// to extended (whose own notification waits too).
	clock.Set(start.Add(61 * time.Minute))
	if o := m("cordon_incidents_overdue"); o != 1 {
		t.Fatalf("an hour without a notification accepted: overdue %v, want 1", o)
	}
	testenv.Eventually(t, 30*time.Second, "escalated to extended", func() bool {
		return m(`cordon_incident_escalations_total\{to="extended"\}`) == 1 && m(extended) == 1 && m(open) == 0
	})
	if a := m(age); a != 61*60 {
		t.Fatalf("oldest undelivered age %vs, want %v", a, 61*60)
	}
	d1 := m(deliveries)

	// SMTP back on the same address, and the clock past every retry's
	// back-off (15 minutes at most): the outbox drains.
	smtpd = startSMTP(t, addr, maildir)
	clock.Set(start.Add(80 * time.Minute))
	testenv.Eventually(t, 60*time.Second, "the outbox drained", func() bool { return m(depth) == 0 })
	if a, d := m(age), m(deliveries); a != 0 || d <= d1 {
		t.Fatalf("drained: oldest age %v (want 0), deliveries %v (want more than %v)", a, d, d1)
	}
	if o := m("cordon_incidents_overdue"); o != 0 {
		t.Fatalf("notified (late): overdue %v, want 0", o)
	}
	if len(smtpd.messages()) == 0 {
		t.Fatal("the SMTP server holds no message")
	}
}

// metricOr is metric for a series that may be absent: -1 when it is.
func metricOr(t *testing.T, e *testenv.Env, key, name string) float64 {
	t.Helper()
	body := scrape(t, e, key)
	sub := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(body)
	if sub == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(string(sub[1]), 64)
	return f
}
