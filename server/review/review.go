// Package review produces the periodic review of the audit log that
// CJIS AU-6 and the agency's policy F.2 ask for (weekly by default, more
// often under threat, F.3): a summary of the period's security-relevant
// events with anomalies highlighted, mailed to every LASO and shown on
// the console, which the LASO records as done with a note.
package review

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/enroll"
	"github.com/cordon-mdm/cordon/internal/input"
	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/incidents"
	"github.com/cordon-mdm/cordon/server/store"
)

// Audit actions.
const (
	// ActionProduced: Cordon produced a review and mailed it.
	ActionProduced = "audit.review_produced"
	// ActionReviewed: a LASO recorded a review as done, with a note.
	ActionReviewed = "audit.reviewed"
)

// Defaults.
const (
	DefaultInterval = 7 * 24 * time.Hour
	// MinInterval keeps a mistyped setting from mailing every LASO every
	// few seconds.
	MinInterval = time.Hour
	// FailedSignInLimit: more failed sign-ins than this for one account
	// in a period is an anomaly.
	FailedSignInLimit = 5
	// MaxNote bounds the LASO's note (README, "Limits on input").
	MaxNote = 4096
	// maxLines bounds the entries listed per section; the count is exact.
	maxLines = 50
)

// Actions the review reads that other packages write. audit.failed is
// added by the AU-5 work; it is matched by name.
const (
	actionLogin        = "console.login"
	actionUserLocked   = "user.locked"
	actionConsoleDeny  = "console.denied"
	actionCommand      = "command.requested"
	actionAuditFailed  = "audit.failed"
	actionCompliance   = "compliance.changed"
	actionQuarantined  = "device.quarantined"
	actionQuarantineUp = "device.quarantine_lifted"
)

// Store is what the review reads and keeps.
type Store interface {
	WalkAuditBetween(ctx context.Context, from, to time.Time, fn func(*store.AuditEntry) error) error
	FirstAuditTime(ctx context.Context) (time.Time, error)
	SaveAuditReview(ctx context.Context, r *store.AuditReview) error
	ListAuditReviews(ctx context.Context, limit int) ([]store.AuditReview, error)
	GetAuditReview(ctx context.Context, id string) (*store.AuditReview, error)
	MarkAuditReviewed(ctx context.Context, id, by, note string, at time.Time) (bool, error)
	UsersWithRoles(ctx context.Context, roles ...string) ([]store.User, error)
}

// Auditor records the review's own steps.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) error
}

// Mailer sends a message to addresses through the notification outbox.
type Mailer interface {
	Mail(ctx context.Context, about, ref, subject, body string, to []string)
}

// Reporting gives an incident's IR-6 reporting clock, for the incidents
// section.
type Reporting func(ctx context.Context, incidentID string) (incidents.Reporting, error)

// Service produces and records reviews.
type Service struct {
	store     Store
	audit     Auditor
	mail      Mailer
	reporting Reporting
	interval  time.Duration
	now       func() time.Time
	log       *slog.Logger
	mu        sync.Mutex
}

// Option configures a Service.
type Option func(*Service)

// WithInterval sets the review interval (default weekly).
func WithInterval(d time.Duration) Option { return func(s *Service) { s.interval = d } }

// WithClock replaces the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithMailer mails each produced review to every LASO.
func WithMailer(m Mailer) Option { return func(s *Service) { s.mail = m } }

// WithReporting adds each incident's reporting time to the review.
func WithReporting(r Reporting) Option { return func(s *Service) { s.reporting = r } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// New returns a Service.
func New(st Store, auditor Auditor, opts ...Option) *Service {
	s := &Service{store: st, audit: auditor, interval: DefaultInterval, now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Interval is the review interval.
func (s *Service) Interval() time.Duration { return s.interval }

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

// Produce makes the review of the period that has ended, if one has:
// the period starts where the last review ended (or at the oldest audit
// entry) and ends an interval later or at now, whichever is later, so a
// server that was down long gets one review of the whole gap. The server
// runs it on its sweep. It returns the new review, or nil.
func (s *Service) Produce(ctx context.Context) (*store.AuditReview, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now().UTC().Truncate(time.Microsecond)
	last, err := s.store.ListAuditReviews(ctx, 1)
	if err != nil {
		return nil, err
	}
	var start time.Time
	if len(last) > 0 {
		start = last[0].PeriodEnd
	} else if start, err = s.store.FirstAuditTime(ctx); err != nil {
		return nil, err
	}
	if start.IsZero() || now.Sub(start) < s.interval {
		return nil, nil
	}
	sum, err := s.Build(ctx, start, now)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(sum)
	if err != nil {
		return nil, err
	}
	rv := &store.AuditReview{ID: uuid.NewString(), PeriodStart: start.UTC(), PeriodEnd: now, CreatedAt: now, Summary: string(b)}
	if err := s.store.SaveAuditReview(ctx, rv); err != nil {
		return nil, err
	}
	s.audit.Record(ctx, audit.Entry{Actor: "server", Source: "local", Action: ActionProduced, Target: "review:" + rv.ID,
		Outcome: audit.Success, Details: map[string]string{"period_start": start.UTC().Format(TimeLayout),
			"period_end": now.Format(TimeLayout), "entries": fmt.Sprint(sum.Entries), "anomalies": fmt.Sprint(len(sum.Anomalies))}})
	if s.mail != nil {
		users, err := s.store.UsersWithRoles(ctx, auth.RoleLASO)
		if err != nil {
			s.log.Error("review recipients", "err", err)
		} else {
			to := make([]string, 0, len(users))
			for _, u := range users {
				to = append(to, u.Email)
			}
			s.mail.Mail(ctx, "audit_review", rv.ID, fmt.Sprintf("[Cordon] Audit review due: %s to %s, %d anomalies",
				start.UTC().Format("2006-01-02"), now.Format("2006-01-02"), len(sum.Anomalies)), EmailBody(sum, rv.ID), to)
		}
	}
	return rv, nil
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

// View is a review as the API and the console show it.
type View struct {
	Review  store.AuditReview
	Summary Summary
	// Overdue: not recorded as done an interval after it was produced.
	Overdue bool
}

// Status is the list of reviews and whether any is overdue.
type Status struct {
	Interval time.Duration
	Reviews  []View
	Overdue  bool
	// Pending counts reviews produced and not yet recorded as done.
	Pending int
	// NextAt is when the next review will be produced.
	NextAt time.Time
}

// Status lists the newest reviews on the service's clock.
func (s *Service) Status(ctx context.Context, limit int) (*Status, error) {
	rs, err := s.store.ListAuditReviews(ctx, limit)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	st := &Status{Interval: s.interval, Reviews: []View{}}
	for _, r := range rs {
		v := View{Review: r, Overdue: r.ReviewedAt == nil && now.Sub(r.CreatedAt) > s.interval}
		_ = json.Unmarshal([]byte(r.Summary), &v.Summary) // written by Produce
		if r.ReviewedAt == nil {
			st.Pending++
		}
		st.Overdue = st.Overdue || v.Overdue
		st.Reviews = append(st.Reviews, v)
	}
	if len(rs) > 0 {
		st.NextAt = rs[0].PeriodEnd.Add(s.interval)
	} else if first, err := s.store.FirstAuditTime(ctx); err == nil && !first.IsZero() {
		st.NextAt = first.Add(s.interval)
	}
	return st, nil
}

// Record marks a review as done by actor, with a note.
func (s *Service) Record(ctx context.Context, id, note, actor, source string) (*store.AuditReview, error) {
	note = strings.TrimSpace(note)
	if err := input.First(input.Text("id", id, 64), input.FreeText("note", note, MaxNote)); err != nil {
		return nil, err
	}
	if id == "" || note == "" {
		return nil, input.Errorf("note", "a review is recorded with its id and a note saying what was looked at")
	}
	rv, err := s.store.GetAuditReview(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	ok, err := s.store.MarkAuditReviewed(ctx, id, actor, note, now)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: review %s was already recorded as done", store.ErrConflict, id)
	}
	if err := s.audit.Record(ctx, audit.Entry{Actor: actor, Source: source, Action: ActionReviewed, Target: "review:" + id,
		Outcome: audit.Success, Details: map[string]string{"period_start": rv.PeriodStart.UTC().Format(TimeLayout),
			"period_end": rv.PeriodEnd.UTC().Format(TimeLayout), "note": note}}); err != nil {
		return nil, err
	}
	rv.ReviewedAt, rv.ReviewedBy, rv.Note = &now, actor, note
	return rv, nil
}
