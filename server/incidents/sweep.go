package incidents

import (
	"context"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/store"
)

// Escalate moves every ongoing incident that has reached the line to
// extended. The server runs it at start-up and then every few seconds, so
// an escalation due while it was down fires as soon as it is back.
func (s *Service) Escalate(ctx context.Context) error {
	now := s.now().UTC().Truncate(time.Microsecond)
	due, err := s.store.DueEscalations(ctx, now)
	if err != nil {
		return err
	}
	for i := range due {
		inc := &due[i]
		was := inc.Category
		s.classify(inc, now)
		inc.UpdatedAt = now
		late := now.Sub(inc.StartedAt.Add(s.settings.Line)).Round(time.Second)
		detail := fmt.Sprintf("ongoing for %s: %s → %s, severity %s", now.Sub(inc.StartedAt).Round(time.Second), was, inc.Category, inc.Severity)
		if late > 30*time.Second { // beyond the sweep interval
			detail += fmt.Sprintf(" (escalated %s late: the server was not running at 15:00)", late)
		}
		// Not saved without its entry: the next sweep escalates it.
		claimed := false
		if err := s.store.InTx(ctx, func(tx *store.Store) error {
			// Another server process may have escalated it since it was
			// read (the sweep's lease is the first guard, this the second).
			var err error
			if claimed, err = tx.ClaimEscalation(ctx, inc.ID, now); err != nil || !claimed {
				return err
			}
			if err := tx.SaveIncident(ctx, inc, store.IncidentEvent{At: now, Actor: "server", Action: "escalated", Detail: detail}); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, "server", "local", ActionEscalated, inc, map[string]string{"detail": detail})
		}); err != nil {
			return err
		}
		if !claimed {
			continue
		}
		s.metrics.escalations.WithLabelValues(EscalatedExtended).Inc()
		s.playbook(ctx, inc)
		if s.notify != nil {
			s.notify.Notify(ctx, inc, "escalated to extended")
		}
	}
	return nil
}

// DetectSilentUnlocked opens a loss-of-control incident for every device
// whose last report said unlocked and that has been silent for the
// line: an unattended unlocked laptop must not wait for someone to notice.
func (s *Service) DetectSilentUnlocked(ctx context.Context) error {
	if !s.detectSilent {
		return nil
	}
	now := s.now().UTC()
	// Only the devices past the line, unlocked now and with no open
	// incident, from an index; each is checked again below against its
	// timeline, as when every device was read.
	devs, err := s.store.SilentDevices(ctx, LockUnlocked, now.Add(-s.settings.Line), now)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.Status != "active" || d.Online || d.LastSeen == nil || now.Sub(*d.LastSeen) < s.settings.Line {
			continue
		}
		tl, err := s.store.LockTimeline(ctx, d.ID)
		if err != nil || stateAt(tl, now) != LockUnlocked {
			continue
		}
		if open, err := s.store.OpenIncidentFor(ctx, d.ID); err != nil || open {
			continue
		}
		_, err = s.open(ctx, Report{DeviceID: d.ID, Kind: KindLossOfControl, LockState: LockUnlocked, StartedAt: *d.LastSeen,
			Description: fmt.Sprintf("server-detected: the device's last report said unlocked and it has been silent since %s",
				timefmt.Human(*d.LastSeen)), Actor: "server", Source: "local"}, "telemetry")
		if err != nil {
			s.log.Error("server-detected incident", "device_id", d.ID, "err", err)
		}
	}
	return nil
}

// stateAt is the lock state the timeline (oldest first, at the server's
// trusted times) shows at t. Entries after t are skipped rather than
// taken as the last word: the timeline holds no future entries since
// times are checked, but one written before that must not decide.
func stateAt(tl []store.LockEvent, t time.Time) string {
	for i := len(tl) - 1; i >= 0; i-- {
		if !tl[i].At.After(t) {
			return tl[i].State
		}
	}
	return ""
}
