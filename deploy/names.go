// Package deploy holds what ships beside the binaries for operators: the
// Prometheus alert rules and the Grafana dashboard (README, Monitoring).
// Its tests run the real promtool from Debian's prometheus package.
package deploy

import (
	_ "embed"
	"regexp"
	"sort"
	"strings"
)

//go:embed prometheus/cordon-rules.yml
var rules []byte

//go:embed grafana/cordon-dashboard.json
var dashboardJSON []byte

// MetricNames lists the cordon_ metrics the rules and the dashboard
// query, without histogram suffixes: the integration suite checks that
// a running server serves each of them.
func MetricNames() []string {
	seen := map[string]bool{}
	re := regexp.MustCompile(`cordon_[a-z0-9_]+`)
	for _, b := range [][]byte{rules, dashboardJSON} {
		for _, m := range re.FindAllString(string(b), -1) {
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				m = strings.TrimSuffix(m, suffix)
			}
			// cordon-rules.yml is a file name in comments, not a metric.
			if m != "cordon_rules" && m != "cordon_dashboard" {
				seen[m] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Rules is the Prometheus rules file, as the server package installs it
// (MonitoringDir).
func Rules() []byte { return rules }

// Dashboard is the Grafana dashboard's JSON.
func Dashboard() []byte { return dashboardJSON }
