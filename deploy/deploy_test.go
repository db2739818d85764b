package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cordon-mdm/cordon/internal/needs"
)

func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(needs.Tool(t, "promtool", "prometheus"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRules: promtool accepts the rules file and its unit tests pass:
// each alert fires on the series that should raise it and not before.
func TestAlertRules(t *testing.T) {
	promtool(t, "prometheus", "check", "rules", "cordon-rules.yml")
	promtool(t, "prometheus", "test", "rules", "cordon-rules.test.yml")
}

// TestAlertRulesEachTested: every alert in the rules file has a unit test
// that expects it to fire, so a new rule cannot ship untested.
func TestAlertRulesEachTested(t *testing.T) {
	rules, err := os.ReadFile("prometheus/cordon-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("prometheus/cordon-rules.test.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllSubmatch(rules, -1)
	if len(alerts) < 10 {
		t.Fatalf("found %d alerts in the rules file; the pattern no longer matches it", len(alerts))
	}
	for _, a := range alerts {
		firing := regexp.MustCompile(`alertname: ` + string(a[1]) + `\n\s*exp_alerts:\n\s*- exp_labels`)
		if !firing.Match(tests) {
			t.Errorf("alert %s has no test in cordon-rules.test.yml that expects it to fire", a[1])
		}
	}
}

type dashboard struct {
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// TestDashboard: the committed dashboard is what gen.py writes, and every
// panel's query is PromQL that Prometheus parses (promtool checks them as
// recording rules, with the dashboard's $instance variable filled in).
func TestDashboard(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		needs.Missing(t, "python3 is missing")
	}
	fresh := filepath.Join(t.TempDir(), "dashboard.json")
	if out, err := exec.Command("python3", "grafana/gen.py", fresh).CombinedOutput(); err != nil {
		t.Fatalf("gen.py: %v\n%s", err, out)
	}
	want, _ := os.ReadFile(fresh)
	got, err := os.ReadFile("grafana/cordon-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got) {
		t.Errorf("grafana/cordon-dashboard.json is not what gen.py writes: run python3 deploy/grafana/gen.py")
	}
	var d dashboard
	if err := json.Unmarshal(got, &d); err != nil {
		t.Fatal(err)
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			n++
			expr := strings.ReplaceAll(tg.Expr, "$instance", ".+")
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d\n        expr: %q\n", n, expr)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := promtool(t, dir, "check", "rules", "rules.yml")
	if !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rules found", n)) {
		t.Errorf("promtool checked fewer queries than the dashboard has (%d):\n%s", n, out)
	}
}

// TestMetricNames: the names the integration suite checks against a
// running server are the ones the rules and dashboard query.
func TestMetricNames(t *testing.T) {
	names := MetricNames()
	for _, want := range []string{"cordon_notify_outbox_oldest_age_seconds", "cordon_report_commit_duration_seconds", "cordon_devices"} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricNames() = %v, missing %s", names, want)
		}
	}
	for _, n := range names {
		if strings.HasSuffix(n, "_bucket") || n == "cordon_rules" {
			t.Errorf("MetricNames() has %s, which is not a metric family", n)
		}
	}
}
