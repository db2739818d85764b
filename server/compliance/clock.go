package compliance

import (
	"context"
	"fmt"
	"time"

	"github.com/cordon-mdm/cordon/protocol"
	"github.com/cordon-mdm/cordon/server/store"
)

// The clock control: a device whose clock keeps being wrong gets a
// finding. It is the server's control, not a profile's: the gateway
// already refuses to believe a wrong time (the report is kept at its
// receive time), and what the finding adds is that someone looks at a
// device whose own records cannot be placed in time. No profile setting
// turns it off, since the profile describes the device's configuration
// and this is about trust in the record.
const (
	CtlClock = "clock"
	// clockCJIS: AU-8 (time stamps) asks that the times of audit records
	// come from system clocks and map to UTC. A device's lock events and
	// reports are such records here (incidents are classified from
	// them), and a clock set wrong makes them unplaceable.
	clockCJIS = "5.4 [AU-8]"
	// Moderate, like session_lock: the server has already protected its
	// history, so the finding is about trust, not exposure.
	clockSeverity = "moderate"
	// ClockSkewedReports of the last ClockWindow reports: one wrong
	// report is a glitch (an RTC reset before NTP sync, a VM resumed from
	// a snapshot) and is only flagged; three in ten is a clock that stays
	// wrong or is being set. After the clock is fixed, the finding
	// resolves once fewer than three of the last ten are skewed.
	ClockSkewedReports = 3
	ClockWindow        = 10
	// clockGrace: a day to fix it (turn NTP on) before the device is
	// refused CJI access. Grace runs by the server's clock from when the
	// server first saw the finding, so a device cannot lengthen it by
	// lying about the time. A clock that stays wrong past a day is
	// quarantined like any other finding past grace: its lock timeline
	// can then only say when reports arrived, not when locks happened.
	clockGrace = 24 * time.Hour
)

// ClockRecords is the clock record of a device's recent reports.
type ClockRecords interface {
	RecentClock(ctx context.Context, deviceID string, n int) ([]store.PostureReport, error)
}

// clockResult is the clock finding for the device's recent reports
// (newest first), or nil.
func clockResult(recent []store.PostureReport) *Result {
	skewed, worst := 0, int64(0)
	for _, r := range recent {
		if r.ClockSkew {
			skewed++
			if abs(r.SkewSeconds) > abs(worst) {
				worst = r.SkewSeconds
			}
		}
	}
	if skewed < ClockSkewedReports {
		return nil
	}
	dir := "ahead"
	if worst < 0 {
		dir = "behind (before the device's enrollment)"
	}
	return &Result{Control: CtlClock, CJIS: clockCJIS, Severity: clockSeverity, Grace: clockGrace,
		Message: fmt.Sprintf("the device's clock was wrong in %d of its last %d reports (up to %s %s, more than %s); they are kept at the server's receive time",
			skewed, len(recent), offset(worst), dir, offset(int64(protocol.MaxClockSkew/time.Second)))}
}

func (s *Service) clock(ctx context.Context, deviceID string) (*Result, error) {
	recent, err := s.store.RecentClock(ctx, deviceID, ClockWindow)
	if err != nil {
		return nil, fmt.Errorf("clock record: %w", err)
	}
	return clockResult(recent), nil
}

// offset says a number of seconds in the largest sensible unit.
func offset(sec int64) string {
	sec = abs(sec)
	switch {
	case sec >= 2*86400:
		return fmt.Sprintf("%d days", sec/86400)
	case sec >= 2*3600:
		return fmt.Sprintf("%d hours", sec/3600)
	case sec >= 120:
		return fmt.Sprintf("%d minutes", sec/60)
	}
	return fmt.Sprintf("%d seconds", sec)
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
