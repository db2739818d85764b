package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cordon-mdm/cordon/agent"
	"github.com/cordon-mdm/cordon/deploy"
	"github.com/cordon-mdm/cordon/internal/needs"
	"github.com/cordon-mdm/cordon/internal/testenv"
	"github.com/cordon-mdm/cordon/server"
)

// scrape reads /metrics as Prometheus does.
func scrape(t *testing.T, e *testenv.Env, key string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", e.Server.ConsoleURL()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	return b
}

// addLASO adds a LASO account: incident mail goes to the LASOs, so a
// server with none has nothing in its outbox.
func addLASO(t *testing.T, e *testenv.Env) {
	t.Helper()
	adm, err := server.OpenAdmin(context.Background(), e.DataDir, e.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if err := adm.AddUser(context.Background(), "laso@pd.example", "laso", "correct horse battery staple 42"); err != nil {
		t.Fatal(err)
	}
}

// busyServer is a server with everything the catalogue counts in flight:
// an online agent that answered a lock, a lock queued for an offline
// device, an incident whose mail cannot go (the SMTP address is closed),
// and API traffic.
func busyServer(t *testing.T) (e *testenv.Env, staff string) {
	t.Helper()
	e = testenv.New(t, "", server.WithSMTP("smtp://"+freePort(t), "cordon@pd.example"),
		server.WithSweepInterval(200*time.Millisecond))
	addLASO(t, e)
	laso := e.APIKey("laso")
	a := e.StartAgent(e.MustEnroll(), agent.WithExecutor(&fakeExecutor{}))
	waitOnline(t, e, laso, a.DeviceID())
	if st, c := issue(t, e, laso, a.DeviceID(), map[string]string{"kind": "lock"}); st != 202 {
		t.Fatalf("lock: %d", st)
	} else {
		waitCommand(t, e, laso, c.ID, "done")
	}
	offline := e.MustEnroll()
	if st, _ := issue(t, e, laso, deviceID(t, offline), map[string]string{"kind": "lock"}); st != 202 {
		t.Fatalf("lock for the offline device: %d", st)
	}
	if st := e.Do("POST", "/api/v1/incidents", e.APIKey("user"), map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
		"lock_state": "locked", "started_at": time.Now().UTC().Add(-20 * time.Minute), "location": "patrol car 12",
		"description": "left on the roof"}, nil); st != 201 {
		t.Fatalf("incident: %d", st)
	}
	return e, laso
}

// TestMetricsScrapePassesPromtool: promtool's linter finds nothing wrong
// in a live scrape, every metric the alert rules and the dashboard query
// is served, and no label carries an unbounded value such as a device id.
func TestMetricsScrapePassesPromtool(t *testing.T) {
	tool := needs.Tool(t, "promtool", "prometheus")
	e, laso := busyServer(t)
	key := e.APIKey("it-admin")
	// The failed SMTP attempt is in the catalogue too: wait for it.
	testenv.Eventually(t, 30*time.Second, "a failed mail delivery counted", func() bool {
		return metric(t, e, key, `cordon_notify_failures_total\{channel="email"\}`) > 0
	})
	body := scrape(t, e, laso)

	cmd := exec.Command(tool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	for _, name := range deploy.MetricNames() {
		if _, ok := families[name]; !ok {
			t.Errorf("%s is queried by the alert rules or the dashboard but not served", name)
		}
	}
	unbounded := map[string]bool{"device": true, "device_id": true, "id": true, "user": true, "email": true,
		"address": true, "serial": true, "path": true, "udid": true, "incident": true, "command_id": true}
	for name, f := range families {
		if !strings.HasPrefix(name, "cordon_") {
			continue
		}
		if f.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if unbounded[l.GetName()] {
					t.Errorf("%s has the unbounded label %s=%q", name, l.GetName(), l.GetValue())
				}
			}
		}
	}
}

// TestMetricsOutboxAlertOnRecordedSeries (acceptance 2): with the SMTP
// server down, an incident's mail waits in the outbox; a scrape a minute
// apart (the notification clock moved a minute each time) records the
// outbox's depth and oldest age rising, and promtool, run on those
// recorded samples with the shipped rules, fires CordonNotifyOutboxStuck
// at 15 minutes and not before.
func TestMetricsOutboxAlertOnRecordedSeries(t *testing.T) {
	tool := needs.Tool(t, "promtool", "prometheus")
	start := time.Now().UTC().Truncate(time.Second)
	clock := &fakeClock{t: start}
	e := testenv.New(t, "", server.WithSMTP("smtp://"+freePort(t), "cordon@pd.example"),
		server.WithSweepInterval(200*time.Millisecond), server.WithIncidentClock(clock.Now))
	addLASO(t, e)
	key := e.APIKey("auditor")
	a := e.StartAgent(e.MustEnroll())
	waitOnline(t, e, e.APIKey("laso"), a.DeviceID())
	if d := metric(t, e, key, `cordon_notify_outbox_depth\{channel="email"\}`); d != 0 {
		t.Fatalf("outbox depth before any incident = %v", d)
	}
	if st := e.Do("POST", "/api/v1/incidents", e.APIKey("user"), map[string]any{"device_id": a.DeviceID(), "kind": "loss_of_control",
		"lock_state": "locked", "started_at": start.Add(-5 * time.Minute), "location": "court lobby",
		"description": "left at security"}, nil); st != 201 {
		t.Fatalf("incident: %d", st)
	}
	testenv.Eventually(t, 30*time.Second, "a failed delivery attempt", func() bool {
		return metric(t, e, key, `cordon_notify_failures_total\{channel="email"\}`) > 0
	})

	var depth, age []string
	for i := 0; i <= 20; i++ {
		clock.Set(start.Add(time.Duration(i) * time.Minute))
		d := metric(t, e, key, `cordon_notify_outbox_depth\{channel="email"\}`)
		o := metric(t, e, key, `cordon_notify_outbox_oldest_age_seconds\{channel="email"\}`)
		if d < 1 {
			t.Fatalf("minute %d: outbox depth %v with the SMTP server down", i, d)
		}
		if want := float64(60 * i); o < want || o > want+1 {
			t.Fatalf("minute %d: oldest undelivered age %vs, want %vs", i, o, want)
		}
		depth, age = append(depth, strconv.FormatFloat(d, 'f', -1, 64)), append(age, strconv.FormatFloat(o, 'f', -1, 64))
	}

	dir := t.TempDir()
	rules, err := filepath.Abs("../deploy/prometheus/cordon-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	test := fmt.Sprintf(`rule_files: [%q]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'cordon_notify_outbox_depth{job="cordon",instance="recorded",channel="email"}'
        values: '%s'
      - series: 'cordon_notify_outbox_oldest_age_seconds{job="cordon",instance="recorded",channel="email"}'
        values: '%s'
    alert_rule_test:
      - eval_time: 14m
        alertname: CordonNotifyOutboxStuck
        exp_alerts: []
      - eval_time: 15m
        alertname: CordonNotifyOutboxStuck
        exp_alerts:
          - exp_labels: {severity: critical, instance: recorded, channel: email}
            exp_annotations:
              summary: "Incident notifications on email undelivered for 15 minutes or more"
              description: "The oldest undelivered email notification is 15m 0s old. Check the SMTP server or webhook receiver (cordon_notify_failures_total counts the failed attempts); the outbox keeps retrying."
`, rules, strings.Join(depth, " "), strings.Join(age, " "))
	path := filepath.Join(dir, "recorded.test.yml")
	if err := os.WriteFile(path, []byte(test), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "test", "rules", path).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules on the recorded series: %v\n%s\n%s", err, out, test)
	}
}
