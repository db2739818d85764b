package review

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Summary is a review's content.
type Summary struct {
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Entries     int       `json:"entries"`
	Sections    []Section `json:"sections"`
	Anomalies   []Anomaly `json:"anomalies"`
}

// Section is one kind of security-relevant event.
type Section struct {
	Key   string   `json:"key"`
	Title string   `json:"title"`
	Count int      `json:"count"`
	Lines []string `json:"lines"`
}

// Anomaly is an event the LASO must look at.
type Anomaly struct {
	Kind string `json:"kind"`
	Text string `json:"text"`
	Seq  int64  `json:"seq,omitempty"`
}

// sections, in the order of the issue: which entries each one counts.
var sections = []struct {
	key, title string
	match      func(e *store.AuditEntry, d map[string]string) bool
}{
	{"sign_ins", "Failed sign-ins and lockouts", func(e *store.AuditEntry, _ map[string]string) bool {
		return e.Action == actionLogin && e.Outcome != audit.Success || e.Action == actionUserLocked
	}},
	{"denied", "Denied API calls and rate-limited sources", func(e *store.AuditEntry, _ map[string]string) bool {
		return e.Action == audit.APIDenied || e.Action == audit.GuessesRefused || e.Action == actionConsoleDeny
	}},
	{"device_actions", "Wipes, locks and revocations", func(e *store.AuditEntry, d map[string]string) bool {
		return e.Action == actionCommand && (d["kind"] == "wipe" || d["kind"] == "lock") || e.Action == audit.CertRevoked
	}},
	{"incidents", "Incidents and their reporting times", func(e *store.AuditEntry, _ map[string]string) bool {
		return e.Action == incidents.ActionReported || e.Action == incidents.ActionDetected || e.Action == incidents.ActionEscalated
	}},
	{"refused_devices", "Refused device connections", func(e *store.AuditEntry, _ map[string]string) bool {
		return e.Action == audit.DeviceRefused || e.Action == enroll.ActionRefused
	}},
	{"compliance", "Compliance changes and quarantines", func(e *store.AuditEntry, _ map[string]string) bool {
		return e.Action == actionCompliance || e.Action == actionQuarantined || e.Action == actionQuarantineUp
	}},
	{"clock_skew", "Clock skew", func(e *store.AuditEntry, _ map[string]string) bool { return e.Action == audit.DeviceClockSkew }},
	{"audit_failures", "Audit failures", func(e *store.AuditEntry, _ map[string]string) bool { return e.Action == actionAuditFailed }},
}

// TimeLayout is how reviews show times to people (AU-8: hundredths).
const TimeLayout = timefmt.HumanLayout

// Build summarises the entries of [from, to). An anomaly is:
//   - any wipe requested, and any device revoked;
//   - any audit failure (audit.failed);
//   - any source refused for guessing over the limit (auth.guesses_refused);
//   - any account locked (user.locked);
//   - more than FailedSignInLimit failed sign-ins for one account;
//   - any incident whose report was late or is overdue (IR-6).
func (s *Service) Build(ctx context.Context, from, to time.Time) (*Summary, error) {
	sum := &Summary{PeriodStart: from.UTC(), PeriodEnd: to.UTC()}
	secs := make([]Section, len(sections))
	for i, sec := range sections {
		secs[i] = Section{Key: sec.key, Title: sec.title, Lines: []string{}}
	}
	failedSignIns := map[string]int{}
	seenIncident := map[string]bool{}
	var incidentIDs []string
	err := s.store.WalkAuditBetween(ctx, from, to, func(e *store.AuditEntry) error {
		sum.Entries++
		d := map[string]string{}
		if e.Details != "" {
			_ = json.Unmarshal([]byte(e.Details), &d) // details of other shapes are listed without them
		}
		for i, sec := range sections {
			if !sec.match(e, d) {
				continue
			}
			secs[i].Count++
			if len(secs[i].Lines) < maxLines {
				secs[i].Lines = append(secs[i].Lines, line(e))
			}
		}
		switch {
		case e.Action == actionCommand && d["kind"] == "wipe":
			sum.add("wipe", e, fmt.Sprintf("wipe of %s requested by %s", e.Target, e.Actor))
		case e.Action == audit.CertRevoked:
			sum.add("revocation", e, fmt.Sprintf("%s revoked by %s", e.Target, e.Actor))
		case e.Action == actionAuditFailed:
			sum.add("audit_failure", e, "audit writes failed: "+e.Details)
		case e.Action == audit.GuessesRefused:
			sum.add("guessing", e, fmt.Sprintf("source %s was over the guess limit (%s refused, %s)", e.Source, d["refused"], d["limit"]))
		case e.Action == actionUserLocked:
			sum.add("lockout", e, fmt.Sprintf("%s was locked", e.Target))
		case e.Action == actionLogin && e.Outcome != audit.Success:
			failedSignIns[e.Target]++
		case e.Action == incidents.ActionReported || e.Action == incidents.ActionDetected:
			if id := d["incident"]; id != "" && !seenIncident[id] {
				seenIncident[id] = true
				incidentIDs = append(incidentIDs, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	accounts := make([]string, 0, len(failedSignIns))
	for a, n := range failedSignIns {
		if n > FailedSignInLimit {
			accounts = append(accounts, a)
		}
	}
	sort.Strings(accounts)
	for _, a := range accounts {
		sum.Anomalies = append(sum.Anomalies, Anomaly{Kind: "failed_sign_ins",
			Text: fmt.Sprintf("%d failed sign-ins for %s (more than %d)", failedSignIns[a], a, FailedSignInLimit)})
	}
	if s.reporting != nil {
		for _, id := range incidentIDs {
			rc, err := s.reporting(ctx, id)
			if err != nil {
				continue // a pruned or unreadable incident keeps its audit line
			}
			text := fmt.Sprintf("incident %s: discovered %s, %s", id, rc.DiscoveredAt.Format(TimeLayout), rc.Text())
			for i := range secs {
				if secs[i].Key == "incidents" {
					secs[i].Lines = append(secs[i].Lines, text)
				}
			}
			if rc.Overdue || rc.Late {
				sum.Anomalies = append(sum.Anomalies, Anomaly{Kind: "incident_reporting", Text: text})
			}
		}
	}
	sum.Sections = secs
	if sum.Anomalies == nil {
		sum.Anomalies = []Anomaly{}
	}
	return sum, nil
}

func (sum *Summary) add(kind string, e *store.AuditEntry, text string) {
	sum.Anomalies = append(sum.Anomalies, Anomaly{Kind: kind, Seq: e.Seq, Text: e.Time.UTC().Format(TimeLayout) + ": " + text})
}

func line(e *store.AuditEntry) string {
	l := fmt.Sprintf("#%d %s %s %s %s %s", e.Seq, e.Time.UTC().Format(TimeLayout), e.Action, e.Outcome, e.Target, e.Actor)
	if e.Source != "" && e.Source != "local" {
		l += " from " + e.Source
	}
	return l
}

// EmailBody is the review as plain text, anomalies first.
func EmailBody(sum *Summary, id string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Audit review (CJIS AU-6) %s\r\nPeriod: %s to %s\r\nEntries in the period: %d\r\n\r\n",
		id, sum.PeriodStart.Format(TimeLayout), sum.PeriodEnd.Format(TimeLayout), sum.Entries)
	fmt.Fprintf(&b, "ANOMALIES (%d)\r\n", len(sum.Anomalies))
	for _, a := range sum.Anomalies {
		fmt.Fprintf(&b, "  ! [%s] %s\r\n", a.Kind, a.Text)
	}
	if len(sum.Anomalies) == 0 {
		b.WriteString("  none\r\n")
	}
	for _, sec := range sum.Sections {
		fmt.Fprintf(&b, "\r\n%s: %d\r\n", sec.Title, sec.Count)
		for _, l := range sec.Lines {
			fmt.Fprintf(&b, "  %s\r\n", l)
		}
	}
	b.WriteString("\r\nRecord the review as done, with a note, on the console's Audit review page or with POST /api/v1/audit/reviews.\r\n")
	return b.String()
}
