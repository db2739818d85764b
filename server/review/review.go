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
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/input"
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

// Store is what the review reads and keeps, one small interface per
// concern.
type Store interface {
	TrailReader
	ReviewStore
	Reviewers
}

// TrailReader reads the audit trail a review covers.
type TrailReader interface {
	WalkAuditBetween(ctx context.Context, from, to time.Time, fn func(*store.AuditEntry) error) error
	FirstAuditTime(ctx context.Context) (time.Time, error)
}

// ReviewStore keeps the reviews and who recorded each.
type ReviewStore interface {
	SaveAuditReview(ctx context.Context, r *store.AuditReview) error
	ListAuditReviews(ctx context.Context, limit int) ([]store.AuditReview, error)
	GetAuditReview(ctx context.Context, id string) (*store.AuditReview, error)
	MarkAuditReviewed(ctx context.Context, id, by, note string, at time.Time) (bool, error)
}

// Reviewers finds the LASOs a new review is mailed to.
type Reviewers interface {
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
