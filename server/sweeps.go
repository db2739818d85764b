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
func (s *Server) sweep(ctx context.Context) {
	// First: a pending audit-failure alarm, and audit.failed once the
	// trail is writable again, before this sweep's own entries.
	if err := s.Notify.RefreshAlarmRecipients(ctx); err != nil {
		s.log.Error("audit alarm recipients", "err", err)
	}
	s.Audit.Sweep(ctx)
	if err := s.Incidents.Escalate(ctx); err != nil {
		s.log.Error("incident escalation", "err", err)
	}
	if err := s.Incidents.DetectSilentUnlocked(ctx); err != nil {
		s.log.Error("silent unlocked devices", "err", err)
	}
	if err := s.Compliance.Sweep(ctx); err != nil {
		s.log.Error("compliance sweep", "err", err)
	}
	s.Commands.Expire(ctx)
	if s.AppleMDM != nil {
		if err := s.AppleMDM.QueryDue(ctx, time.Now()); err != nil {
			s.log.Error("apple posture queries", "err", err)
		}
	}
	if _, err := s.Review.Produce(ctx); err != nil {
		s.log.Error("audit review", "err", err)
	}
	s.Notify.Deliver(ctx)
	s.recordGuesses(ctx, false)
	if err := s.console.ExpireSessions(ctx); err != nil {
		s.log.Error("console sessions", "err", err)
	}
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
	res, err := s.AuditAnchor.Prune(ctx, s.cfg.auditRetention)
	if err != nil {
		s.log.Error("audit retention", "err", err)
	} else if res.Removed > 0 {
		s.log.Info("audit entries past the retention pruned", "removed", res.Removed, "through_seq", res.ThroughSeq)
	}
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
