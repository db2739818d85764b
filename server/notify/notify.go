// Package notify tells every LASO and IT administrator about incidents,
// by email over SMTP. Messages go into a durable outbox in the same
// database first and are sent from there, so an SMTP server that is down
// delays a notification but never loses it.
package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/smtp"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/auth"
	"github.com/cordon-mdm/cordon/server/store"
)

// Store is the outbox and the directory of recipients.
type Store interface {
	Directory
	Outbox
	OutboxReader
}

// Directory finds who is told, and names the device a message is about.
type Directory interface {
	UsersWithRoles(ctx context.Context, roles ...string) ([]store.User, error)
	GetDevice(ctx context.Context, id string) (*store.Device, error)
}

// Outbox keeps each message, and its attempts, until it is sent: a
// restart loses none.
type Outbox interface {
	QueueNotifications(ctx context.Context, ns []store.Notification) error
	DueNotifications(ctx context.Context, now time.Time, limit int) ([]store.Notification, error)
	NotificationResult(ctx context.Context, n *store.Notification) error
}

// Service queues and sends notifications.
type Service struct {
	store   Store
	smtpURL *url.URL
	from    string
	link    string // console base URL for links
	tls     *tls.Config
	log     *slog.Logger
	now     func() time.Time
	retry   time.Duration
	sending sync.Mutex
	// csaISO is told of every loss outside the United States.
	csaISO        string
	webhook       *url.URL
	webhookSecret []byte
	// alarmTo: the LASOs and IT administrators last read, for an audit
	// alarm raised while the database cannot answer.
	alarmMu sync.Mutex
	alarmTo []string
	metrics metrics
}

// Option configures a Service.
type Option func(*Service)

// WithSMTP sets the server: smtp://[user:pass@]host:port. STARTTLS is
// used whenever the server offers it.
func WithSMTP(u *url.URL, from string) Option {
	return func(s *Service) { s.smtpURL, s.from = u, from }
}

// WithCSAISO adds the CSA ISO's address to every notification about a
// loss or compromise outside the United States.
func WithCSAISO(email string) Option { return func(s *Service) { s.csaISO = email } }

// WithTLS sets the TLS configuration for STARTTLS (the FIPS-mode one in
// FIPS builds).
func WithTLS(c *tls.Config) Option { return func(s *Service) { s.tls = c } }

// WithLink sets the console URL incidents link to.
func WithLink(base string) Option { return func(s *Service) { s.link = strings.TrimRight(base, "/") } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithClock replaces the clock (tests): queue times and the accept time
// recorded per notification (IR-6's reporting clock reads it).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithRetry sets the first retry delay (doubling up to 15 minutes).
func WithRetry(d time.Duration) Option { return func(s *Service) { s.retry = d } }

// New returns a Service. Without WithSMTP, messages are queued but not
// sent, and the incident shows them as pending.
func New(st Store, opts ...Option) *Service {
	s := &Service{store: st, log: slog.New(slog.DiscardHandler), now: time.Now, retry: 30 * time.Second, tls: &tls.Config{MinVersion: tls.VersionTLS12},
		metrics: newMetrics()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Notify queues one message per LASO and IT administrator carrying the
// four facts the policy requires (device, date and time, description,
// location) with category, severity and a link, then tries to send.
func (s *Service) Notify(ctx context.Context, inc *store.Incident, why string) {
	users, err := s.store.UsersWithRoles(ctx, auth.RoleLASO, auth.RoleITAdmin)
	if err != nil {
		s.log.Error("notification recipients", "err", err)
		return
	}
	device := inc.DeviceID
	if d, err := s.store.GetDevice(ctx, inc.DeviceID); err == nil {
		device = fmt.Sprintf("%s (%s, %s, owner %s)", d.Name, d.ID, d.Platform, d.Owner)
	}
	subject := fmt.Sprintf("[Cordon] %s %s incident: %s, %s", strings.ToUpper(inc.Severity), inc.DurationClass, strings.ReplaceAll(inc.Kind, "_", " "), why)
	when := timefmt.Human(inc.StartedAt)
	if inc.EndedAt != nil {
		when += " to " + timefmt.Human(*inc.EndedAt)
	} else {
		when += " (ongoing)"
	}
	body := fmt.Sprintf("Device: %s\r\nDate and time: %s\r\nDescription: %s\r\nLocation: %s\r\n\r\nCategory: %s\r\nSeverity: %s\r\nLock state: %s\r\nReported by: %s\r\nOutside the United States: %v\r\n",
		device, when, inc.Description, inc.Location, inc.Category, inc.Severity, inc.LockState, inc.Reporter, inc.OutsideUS)
	if inc.Contradiction != "" {
		body += "Note: " + inc.Contradiction + "\r\n"
	}
	if s.link != "" {
		body += "\r\n" + s.link + "/api/v1/incidents/" + inc.ID + "\r\n"
	}
	to := make([]string, 0, len(users)+1)
	for _, u := range users {
		to = append(to, u.Email)
	}
	if inc.OutsideUS {
		to = append(to, s.csaISO)
	}
	s.enqueue(ctx, outgoing{ref: inc.ID, subject: subject, body: body, to: to, step: why, payload: s.incidentPayload(inc, device, why)})
}

// outgoing is one notification: an email to each address, and the
// payload to the webhook.
type outgoing struct {
	ref, about    string // what it is about: IncidentID and About of each row
	subject, body string
	to            []string // duplicates and empty addresses are skipped
	step          string   // the webhook row's subject
	payload       any
	emailOnly     bool // no webhook row (the audit review is for people)
}

// Mail queues one plain email to each address (the audit review); about
// and ref say what it is about, as on every outbox row.
func (s *Service) Mail(ctx context.Context, about, ref, subject, body string, to []string) {
	s.enqueue(ctx, outgoing{ref: ref, about: about, subject: subject, body: body, to: to, emailOnly: true})
}

// enqueue writes one row per distinct address, plus the webhook's when
// one is configured, to the outbox, and starts a delivery.
func (s *Service) enqueue(ctx context.Context, o outgoing) {
	ns := s.rows(o)
	if len(ns) == 0 {
		return
	}
	if err := s.store.QueueNotifications(ctx, ns); err != nil {
		s.log.Error("queue notifications", "ref", o.ref, "err", err)
		return
	}
	go s.Deliver(context.WithoutCancel(ctx))
}

// rows are o's outbox rows: one per distinct address, and the webhook's.
func (s *Service) rows(o outgoing) []store.Notification {
	now := s.now().UTC()
	var ns []store.Notification
	seen := map[string]bool{}
	for _, addr := range o.to {
		if addr == "" || seen[strings.ToLower(addr)] {
			continue
		}
		seen[strings.ToLower(addr)] = true
		ns = append(ns, store.Notification{ID: uuid.NewString(), IncidentID: o.ref, About: o.about, Channel: "email",
			Recipient: addr, Subject: o.subject, Body: o.body, CreatedAt: now, NextAttempt: now})
	}
	if s.webhook != nil && !o.emailOnly {
		if b, err := json.Marshal(o.payload); err != nil {
			s.log.Error("webhook payload", "ref", o.ref, "err", err)
		} else {
			ns = append(ns, store.Notification{ID: uuid.NewString(), IncidentID: o.ref, About: o.about, Channel: "webhook",
				Recipient: s.webhook.Redacted(), Subject: o.step, Body: string(b), CreatedAt: now, NextAttempt: now})
		}
	}
	return ns
}

// Deliver sends every due message once; failures are retried later with
// a doubling delay. The server runs it on its sweep.
func (s *Service) Deliver(ctx context.Context) {
	if s.smtpURL == nil && s.webhook == nil {
		return
	}
	s.sending.Lock()
	defer s.sending.Unlock()
	due, err := s.store.DueNotifications(ctx, s.now().UTC(), 100)
	if err != nil {
		s.log.Error("outbox", "err", err)
		return
	}
	for i := range due {
		n := &due[i]
		var err error
		switch {
		case n.Channel == "webhook":
			err = s.post(ctx, n)
		case s.smtpURL == nil:
			continue // email waits for an SMTP server to be configured
		default:
			err = s.send(ctx, n)
		}
		s.counted(n, err)
		n.Attempts++
		now := s.now().UTC()
		if err == nil {
			// SentAt is the accept time: the SMTP server's 250 after
			// DATA, or the webhook's 2xx.
			n.SentAt, n.LastError = &now, ""
		} else {
			n.LastError = err.Error()
			n.NextAttempt = now.Add(min(s.retry<<min(n.Attempts-1, 10), 15*time.Minute))
			s.log.Warn("notification not sent; will retry", "to", n.Recipient, "attempt", n.Attempts, "err", err)
		}
		if err := s.store.NotificationResult(ctx, n); err != nil {
			s.log.Error("outbox update", "err", err)
		}
	}
}

func (s *Service) send(ctx context.Context, n *store.Notification) error {
	host := s.smtpURL.Host
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := smtp.NewClient(conn, s.smtpURL.Hostname())
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := s.tls.Clone()
		cfg.ServerName = s.smtpURL.Hostname()
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if u := s.smtpURL.User; u != nil {
		pass, _ := u.Password()
		if err := c.Auth(smtp.PlainAuth("", u.Username(), pass, s.smtpURL.Hostname())); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.from); err != nil {
		return err
	}
	if err := c.Rcpt(n.Recipient); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@cordon>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		s.from, n.Recipient, n.Subject, n.CreatedAt.Format(time.RFC1123Z), n.ID, n.Body)
	if _, err := w.Write([]byte(msg)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The server's 250 after DATA means the message is its now; a QUIT
	// that fails must not make it count as unsent, or it goes twice.
	if err := c.Quit(); err != nil {
		s.log.Debug("SMTP QUIT after delivery", "err", err)
	}
	return nil
}
