package server

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cordon-mdm/cordon/internal/timefmt"
	"github.com/cordon-mdm/cordon/server/audit"
	"github.com/cordon-mdm/cordon/server/ratelimit"
)

// every runs fn each d until ctx ends, and then marks itself done in
// s.wg.
func (s *Server) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	defer s.wg.Done()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// sweep runs the time-driven work: incidents reaching the 15-minute line
// escalate, silent unlocked devices open incidents, and commands nobody
// answered before their not-after expire (each with an audit entry). It
// runs once at start, before anything is served, so that escalations
// that fell due while the server was down fire then.
//
// With several processes on one PostgreSQL every job that changes shared
// state runs under its lease (once), so that it fires once across them;
// what is this process's own (its alarm recipients and pending audit
// alarm, its guess counters) runs in each.
func (s *Server) sweep(ctx context.Context) {
	// First: a pending audit-failure alarm, and audit.failed once the
	// trail is writable again, before this sweep's own entries.
	if err := s.Notify.RefreshAlarmRecipients(ctx); err != nil {
		s.log.Error("audit alarm recipients", "err", err)
	}
	s.Audit.Sweep(ctx)
	if s.bus != nil {
		// Before the silent-device detection, which then sees them.
		s.once(ctx, "online of stopped servers", s.reapOnline)
	}
	s.once(ctx, "incident escalation", s.Incidents.Escalate)
	s.once(ctx, "silent unlocked devices", s.Incidents.DetectSilentUnlocked)
	s.once(ctx, "compliance sweep", s.Compliance.Sweep)
	s.once(ctx, "command expiry", func(ctx context.Context) error { s.Commands.Expire(ctx); return nil })
	// After the expiry; issues the current rollouts' updates to devices
	// that came online since the last sweep.
	s.once(ctx, "agent rollouts", s.Releases.Sweep)
	if s.AppleMDM != nil {
		s.once(ctx, "apple posture queries", func(ctx context.Context) error { return s.AppleMDM.QueryDue(ctx, time.Now()) })
	}
	s.once(ctx, "audit review", func(ctx context.Context) error { _, err := s.Review.Produce(ctx); return err })
	s.once(ctx, "notification delivery", func(ctx context.Context) error { s.Notify.Deliver(ctx); return nil })
	s.recordGuesses(ctx, false)
	s.once(ctx, "console sessions", s.console.ExpireSessions)
}

// auditUpkeep signs a checkpoint of the audit chain and, at start and
// then once a day, prunes entries past the retention up to a checkpoint.
func (s *Server) auditUpkeep(ctx context.Context, start bool) {
	if _, err := s.AuditAnchor.Checkpoint(ctx); err != nil {
		s.log.Error("audit checkpoint", "err", err)
	}
	if !start && time.Since(s.lastPrune) < 24*time.Hour {
		return
	}
	s.lastPrune = time.Now()
	// Each process signs its own checkpoints; pruning is shared work.
	s.once(ctx, "audit retention", func(ctx context.Context) error {
		res, err := s.AuditAnchor.Prune(ctx, s.cfg.auditRetention)
		if err == nil && res.Removed > 0 {
			s.log.Info("audit entries past the retention pruned", "removed", res.Removed, "through_seq", res.ThroughSeq)
		}
		return err
	})
}

// recordGuesses writes one audit entry per source and window in which
// guesses were refused, saying how many: a flood of guesses cannot flood
// the trail. At shutdown (final) the open windows are recorded too.
func (s *Server) recordGuesses(ctx context.Context, final bool) {
	for _, l := range []struct {
		target string
		lim    *ratelimit.Limiter
	}{{"enroll", s.enrollGuesses}, {"api", s.keyGuesses}} {
		sums := l.lim.Sweep()
		if final {
			sums = append(sums, l.lim.Flush()...)
		}
		for _, sum := range sums {
			s.Audit.Record(ctx, audit.Entry{Actor: "anonymous", Source: sum.Source, Action: audit.GuessesRefused,
				Target: l.target, Outcome: audit.Denied, Details: map[string]string{
					"refused": strconv.Itoa(sum.Refused), "failures": strconv.Itoa(sum.Failures),
					"limit":        fmt.Sprintf("%d failures per %v", l.lim.Limit(), l.lim.Window()),
					"window_start": timefmt.JSON(sum.Start), "window_end": timefmt.JSON(sum.End)}})
		}
	}
}
