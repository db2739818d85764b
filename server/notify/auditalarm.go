package notify

import (
	"context"
	"errors"
	"fmt"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/auth"
)

// AuditPayload is what the webhook receives when the audit trail cannot
// be written (AU-5).
type AuditPayload struct {
	Event    string `json:"event"` // "audit_failure"
	Failures int    `json:"failures"`
	First    string `json:"first"`
	Last     string `json:"last"`
	Actions  string `json:"actions"`
}

// alarmTime: UTC with microseconds (AU-8), finer than timefmt.Human:
// the alarm names the failures' first and last instants.
const alarmTime = "2006-01-02 15:04:05.000000 UTC"

// AuditFailing tells every LASO and IT administrator, by email and the
// signed webhook, that audit entries cannot be written (AU-5). It
// implements audit.Alarm.
//
// The database is often what failed, so the alert must not depend on it:
// the recipients last read are remembered, and when the outbox cannot
// take the messages they are sent at once, directly, from memory. An
// error (nobody could be told) leaves the alert pending in the audit Log,
// whose sweep calls again.
func (s *Service) AuditFailing(ctx context.Context, f audit.Outage) error {
	if err := s.RefreshAlarmRecipients(ctx); err != nil {
		s.log.Error("audit alarm recipients; using the last known", "err", err)
	}
	s.alarmMu.Lock()
	to := append([]string(nil), s.alarmTo...)
	s.alarmMu.Unlock()
	subject := "[Cordon] AUDIT FAILURE: audit entries cannot be written; security changes are refused"
	body := fmt.Sprintf("Cordon could not write %d audit entr%s.\r\nFirst failure: %s\r\nLast failure: %s\r\nActions: %s\r\n\r\n"+
		"Security-relevant changes (wipe, lock, revoke, profile, group and role changes, incidents) are refused with 503 until the audit trail can be written again.\r\n"+
		"When it can, Cordon writes an audit.failed entry summarising the failures.\r\n",
		f.Count, plural(f.Count), f.First.UTC().Format(alarmTime), f.Last.UTC().Format(alarmTime), f.ActionList())
	if s.link != "" {
		body += "\r\n" + s.link + "/console/audit\r\n"
	}
	o := outgoing{about: "audit_failure", subject: subject, body: body, to: to, step: "audit_failure",
		payload: AuditPayload{Event: "audit_failure", Failures: f.Count, First: timefmt.JSON(f.First),
			Last: timefmt.JSON(f.Last), Actions: f.ActionList()}}
	ns := s.rows(o)
	if len(ns) == 0 {
		return errors.New("no LASO or IT administrator to alert")
	}
	err := s.store.QueueNotifications(ctx, ns)
	if err == nil {
		go s.Deliver(context.WithoutCancel(ctx))
		return nil
	}
	s.log.Error("audit alarm: outbox unavailable; sending directly", "err", err)
	// Directly: the outbox is down with the trail.
	var errs []error
	sent := 0
	for i := range ns {
		n := &ns[i]
		var err error
		switch {
		case n.Channel == "webhook":
			err = s.post(ctx, n)
		case s.smtpURL == nil:
			continue
		default:
			err = s.send(ctx, n)
		}
		s.counted(n, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", n.Recipient, err))
			continue
		}
		sent++
	}
	if sent == 0 {
		errs = append(errs, errors.New("no alert was sent"))
		return errors.Join(errs...)
	}
	for _, err := range errs {
		s.log.Error("audit alarm not delivered to one recipient", "err", err)
	}
	return nil
}

// RefreshAlarmRecipients remembers every LASO's and IT administrator's
// address, so that an audit alarm reaches them while the database that
// holds them cannot answer. The server runs it on its sweep.
func (s *Service) RefreshAlarmRecipients(ctx context.Context) error {
	users, err := s.store.UsersWithRoles(ctx, auth.RoleLASO, auth.RoleITAdmin)
	if err != nil {
		return err
	}
	to := make([]string, 0, len(users))
	for _, u := range users {
		to = append(to, u.Email)
	}
	s.alarmMu.Lock()
	s.alarmTo = to
	s.alarmMu.Unlock()
	return nil
}

func plural(n int) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}
